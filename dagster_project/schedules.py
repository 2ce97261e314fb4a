"""A nightly full run, for sources that change in place rather than by new files."""

from __future__ import annotations

import os

import dagster as dg

from cdp.run_lock import current_holder
from cdp.workspace import Workspace

# `make ui` sets this, so the schedule runs under the UI's daemon; everywhere else
# (`cdp run`, tests) it stays off. A status switched in the UI is kept by the instance.
SCHEDULE_ON_ENV = "CDP_SCHEDULE_ON"


def build_nightly_schedule(ws: Workspace, job) -> dg.ScheduleDefinition:
    on = os.environ.get(SCHEDULE_ON_ENV) == "1"

    @dg.schedule(
        name="nightly",
        job=job,
        cron_schedule="0 2 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED,
        description="Runs the whole pipeline at 02:00 every night "
        f"(off unless {SCHEDULE_ON_ENV}=1, which `make ui` sets).",
    )
    def nightly(context: dg.ScheduleEvaluationContext):
        # `cdp run` holds the workspace: a second run would write the same lake files.
        if current_holder(ws) is not None:
            return dg.SkipReason("a run is in progress")
        return dg.RunRequest(tags={"cdp/trigger": "nightly"})

    return nightly
