"""A nightly full run, for sources that change in place rather than by new files."""

from __future__ import annotations

import dagster as dg


def build_nightly_schedule(job) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly",
        job=job,
        cron_schedule="0 2 * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs the whole pipeline at 02:00 every night (off until switched on).",
    )
