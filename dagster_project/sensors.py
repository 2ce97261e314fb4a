"""Start the pipeline when new or changed files land in `landing/`."""

import hashlib
import time

import dagster as dg

from cdp.config.sources import SourceSpec
from cdp.ingest import pending_files
from cdp.run_lock import current_holder
from cdp.run_plan import plan_run
from cdp.validate import validate_workspace
from cdp.workspace import Workspace
from dagster_project.selection import after_sources

# A file written to within this many seconds may still be arriving (a copy in progress):
# it waits for the next look, so the run does not load half of it.
SETTLE_SECONDS = 5


def build_landing_sensor(ws: Workspace, specs: list[SourceSpec], job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Runs the new files' sources and what depends on them when files land in "
            "landing/ (everything when `cdp run` would run everything)."
        ),
    )
    def landing_files(context: dg.SensorEvaluationContext):
        # A run in progress may be loading these very files; look again once it is done.
        if current_holder(ws) is not None:
            return dg.SkipReason("a run is in progress")
        changed: list[str] = []
        arriving = 0
        for spec in specs:
            for path in pending_files(ws, spec):
                stat = path.stat()
                changed.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
                arriving += time.time() - stat.st_mtime < SETTLE_SECONDS
        if not changed:
            return dg.SkipReason("no new or changed files in landing/")
        if arriving:
            return dg.SkipReason(
                f"{arriving} file(s) in landing/ written to in the last {SETTLE_SECONDS} s: "
                "looking again at the next tick"
            )
        # What `cdp run` would run: everything after a change of configuration or code
        # (or a run that did not finish), else only what the new files reach.
        plan = plan_run(ws)
        # The checks `cdp run` makes before it starts (they name files, never personal
        # values): a mistake shows in the sensor's ticks, and nothing runs until it is fixed.
        report = validate_workspace(ws, new_files_only=not plan.full)
        if not report.ok:
            shown = "; ".join(str(p) for p in report.problems[:3])
            more = len(report.problems) - 3
            return dg.SkipReason(
                f"{len(report.problems)} problem(s) found by `cdp validate`, nothing was run: "
                f"{shown}{f' (and {more} more: run `cdp validate`)' if more > 0 else ''}"
            )
        selection = (
            None if plan.full else after_sources(context.repository_def.asset_graph, plan.sources)
        )
        # Same files, same key: Dagster starts one run per distinct set of arrivals.
        run_key = hashlib.sha256("\n".join(sorted(changed)).encode()).hexdigest()[:16]
        what = (
            f"everything ({plan.reason})"
            if plan.full
            else f"{', '.join(sorted(plan.sources))} and what depends on them"
        )
        context.log.info(f"{len(changed)} new or changed file(s) in landing/: running {what}")
        return dg.RunRequest(
            run_key=run_key,
            asset_selection=selection,
            tags={
                "cdp/trigger": "landing_files",
                "cdp/sources": ",".join(sorted(plan.sources)) or "all",
            },
        )

    return landing_files
