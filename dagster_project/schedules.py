"""A nightly full run, for sources that change in place rather than by new files."""

from __future__ import annotations

import dagster as dg

from cdp.run_lock import current_holder
from cdp.workspace import Workspace


def build_nightly_schedule(ws: Workspace, job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="nightly",
        job=job,
        cron_schedule="0 2 * * *",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs the whole pipeline at 02:00 every night (off until switched on).",
    )
    def nightly(context: dg.ScheduleEvaluationContext):
        # `cdp run` holds the workspace: a second run would write the same lake files.
        if current_holder(ws) is not None:
            return dg.SkipReason("a run is in progress")
        return dg.RunRequest(tags={"cdp/trigger": "nightly"})

    return nightly
