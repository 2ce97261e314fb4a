"""A nightly full run, for sources that change in place rather than by new files."""

from __future__ import annotations

import os

import dagster as dg

# `make ui` sets this, so the schedule runs under the UI's daemon; everywhere else
# (`cdp run`, tests) it stays off. A status switched in the UI is kept by the instance.
SCHEDULE_ON_ENV = "CDP_SCHEDULE_ON"


def build_nightly_schedule(job) -> dg.ScheduleDefinition:
    on = os.environ.get(SCHEDULE_ON_ENV) == "1"
    return dg.ScheduleDefinition(
        name="nightly",
        job=job,
        cron_schedule="0 2 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED,
        description="Runs the whole pipeline at 02:00 every night "
        f"(off unless {SCHEDULE_ON_ENV}=1, which `make ui` sets).",
    )
