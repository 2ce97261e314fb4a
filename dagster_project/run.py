"""`cdp run`: materialise every asset in order, in-process, through Dagster.

Runs are recorded in the workspace's Dagster instance (`.cdp/dagster_home`), so they
show in `make ui` beside runs started from the UI, the sensor or the schedule.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from cdp.errors import CdpError
from cdp.harmonise.dbt_env import prepare
from cdp.workspace import Workspace
from dagster_project.build import JOB_NAME, build_definitions

StepCallback = Callable[[str, str], None]  # (step key, "start" | "success" | "failure")


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    error: str | None = None
    materializations: dict[str, dict] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    # The failing step's full error with its causes, for CDP_DEBUG=1.
    traceback: str | None = None


_STEP_EVENTS = {"STEP_START": "start", "STEP_SUCCESS": "success", "STEP_FAILURE": "failure"}


class _StepHandler(logging.Handler):
    """Forwards Dagster's step start/success/failure events to a callback."""

    def __init__(self, callback: StepCallback):
        super().__init__()
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None or event.event_type_value not in _STEP_EVENTS:
            return
        self.callback(event.step_key or "", _STEP_EVENTS[event.event_type_value])


def dagster_home(ws: Workspace) -> str:
    home = ws.state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return str(home)


def run_pipeline(
    ws: Workspace, *, full_refresh: bool = False, on_step: StepCallback | None = None
) -> RunOutcome:
    os.environ["DAGSTER_HOME"] = dagster_home(ws)

    @dg.logger
    def step_logger(_init_context) -> logging.Logger:
        logger = logging.Logger("cdp.run", level=logging.DEBUG)
        if on_step is not None:
            logger.addHandler(_StepHandler(on_step))
        return logger

    ws.ensure_dirs()
    prepare(ws)  # the generated models and the manifest the definitions read
    defs = build_definitions(ws, full_refresh=full_refresh, loggers={"cdp": step_logger})
    job = defs.resolve_job_def(JOB_NAME)

    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
        )
    return summarise(result)


def summarise(result) -> RunOutcome:
    """What `cdp run` reports of an in-process Dagster result."""
    outcome = RunOutcome(run_id=result.run_id, success=result.success)
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            outcome.failed_steps.append(event.step_key or "?")
            if outcome.error is None and event.step_failure_data:
                outcome.error = failure_cause(event.step_failure_data.error)
                err = event.step_failure_data.error
                outcome.traceback = err.to_string() if err is not None else None
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.materialization
            key = mat.asset_key.to_user_string()
            outcome.materializations[key] = {k: v.value for k, v in mat.metadata.items()}
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.asset_check_evaluation_data
            if not ev.passed:
                outcome.failed_checks.append(f"{ev.asset_key.to_user_string()}:{ev.check_name}")
    return outcome


USER_ERRORS = ("CdpError", "ConfigError")


def failure_cause(err) -> str | None:
    """The cause of a step failure in one line: the text of our own error if one was
    raised (not Dagster's "Error occurred while executing op" wrapper), else the first
    line of the innermost error."""
    chain = []
    while err is not None and len(chain) < 20:
        chain.append(err)
        err = err.cause or err.context
    if not chain:
        return None
    for e in chain:
        if e.cls_name in USER_ERRORS:
            return _first_line(e.message, e.cls_name)
    for e in chain:
        if e.cls_name == "DagsterDbtCliRuntimeError":
            # raised by dagster-dbt itself (not through our dbt_build): its message starts
            # "The dbt CLI process with command"; dbt's own error comes after it.
            from cdp.harmonise.dbt_env import dbt_log_error

            return dbt_log_error(e.message or "") or _first_line(e.message, e.cls_name)
    return _first_line(chain[-1].message, chain[-1].cls_name)


def _first_line(message: str, cls_name: str | None) -> str:
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    # "cdp.errors.CdpError: text" -> "text"; other errors keep their class name.
    if cls_name in USER_ERRORS and ": " in line:
        return line.split(": ", 1)[1]
    return line


def require_success(outcome: RunOutcome) -> None:
    """One line: the failing asset, then the cause."""
    if not outcome.success:
        steps = ", ".join(outcome.failed_steps) or "the run"
        cause = outcome.error or "failed (see the Dagster UI for the logs)"
        raise CdpError(f"{steps}: {cause} (run {outcome.run_id})")
