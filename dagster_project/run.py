"""`cdp run`: materialise every asset in order, in-process, through Dagster.

Runs are recorded in the workspace's Dagster instance (`.cdp/dagster_home`), so they
show in `make ui` beside runs started from the UI, the sensor or the schedule.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from cdp.config.settings import load_settings
from cdp.errors import CdpError
from cdp.harmonise.dbt_env import prepare
from cdp.harmonise.dbt_warm import warm_dbt
from cdp.io.atomic import write_text
from cdp.workspace import Workspace
from dagster_project.build import JOB_NAME, build_definitions
from dagster_project.selection import after_sources

StepCallback = Callable[[str, str], None]  # (step key, "start" | "success" | "failure")
EventCallback = Callable[[object], None]  # a DagsterEvent, as it happens


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
    # Warnings the steps logged, as (step, message), for a summary by kind.
    warnings: list[tuple[str, str]] = field(default_factory=list)


_STEP_EVENTS = {"STEP_START": "start", "STEP_SUCCESS": "success", "STEP_FAILURE": "failure"}


class _EventHandler(logging.Handler):
    """Forwards Dagster's events to callbacks, and keeps the warnings steps log."""

    def __init__(self, on_step: StepCallback | None, on_event: EventCallback | None):
        super().__init__()
        self.on_step, self.on_event = on_step, on_event
        self.warnings: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            if record.levelno >= logging.WARNING:
                self.warnings.append((meta.get("step_key") or "", meta.get("orig_message") or ""))
            return
        if self.on_event is not None:
            self.on_event(event)
        if self.on_step is not None and event.event_type_value in _STEP_EVENTS:
            self.on_step(event.step_key or "", _STEP_EVENTS[event.event_type_value])


# What earlier versions wrote: replaced. Any other dagster.yaml is the user's and is kept.
_OLD_INSTANCE_CONFIG = "telemetry:\n  enabled: false\n"
_INSTANCE_CONFIG = """\
# Written by cdp. Edit freely: cdp leaves a changed file alone.
telemetry:
  enabled: false
# Dagster's SQLite event log with its connections kept (dagster_project/event_log.py).
event_log_storage:
  module: dagster_project.event_log
  class: WorkspaceEventLogStorage
  config:
    base_dir: history/runs  # relative to this folder
"""


def dagster_home(ws: Workspace) -> str:
    """The workspace's Dagster instance: telemetry off (no banner, no calls out), and the
    event log of dagster_project/event_log.py. Runs are in history/ as Dagster keeps them."""
    home = ws.state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text(encoding="utf-8") == _OLD_INSTANCE_CONFIG:
        write_text(config, _INSTANCE_CONFIG)
    return str(home)


def step_sizes(defs: dg.Definitions) -> dict[str, int]:
    """How many assets each step materialises (a dbt step: one per model)."""
    sizes: dict[str, int] = {}
    for assets in defs.assets or []:
        if isinstance(assets, dg.AssetsDefinition):
            sizes[assets.node_def.name] = len(assets.keys)
    return sizes


def run_pipeline(
    ws: Workspace,
    *,
    full_refresh: bool = False,
    on_step: StepCallback | None = None,
    on_event: EventCallback | None = None,
    on_plan: Callable[[dict[str, int]], None] | None = None,
    sources: list[str] | None = None,
    verbose: bool = False,
) -> RunOutcome:
    """Run the pipeline in-process. `sources`: only these sources' ingestion and what
    depends on it (None: every asset); `verbose`: the run's log lines on the console.

    On DuckDB, the run's dbt commands fork from one process that imported dbt while the
    run started (cdp/harmonise/dbt_warm.py)."""
    os.environ["DAGSTER_HOME"] = dagster_home(ws)
    handler = _EventHandler(on_step, on_event)

    @dg.logger
    def cdp_logger(_init_context) -> logging.Logger:
        logger = logging.Logger("cdp.run", level=logging.DEBUG)
        logger.addHandler(handler)
        if verbose:
            stream = logging.StreamHandler()
            stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(stream)
        return logger

    ws.ensure_dirs()
    with warm_dbt(load_settings(ws.settings_file).engine):
        prepare(ws)  # the generated models and the manifest the definitions read
        defs = build_definitions(ws, full_refresh=full_refresh, loggers={"cdp": cdp_logger})
        job = defs.resolve_job_def(JOB_NAME)
        selection = None
        if sources is not None:
            selection = after_sources(defs.resolve_asset_graph(), sources)
        if on_plan is not None:
            sizes = step_sizes(defs)
            if selection is not None:
                wanted = set(selection)
                sizes = {
                    a.node_def.name: len(set(a.keys) & wanted)
                    for a in defs.assets or []
                    if isinstance(a, dg.AssetsDefinition) and set(a.keys) & wanted
                }
            on_plan(sizes)
        # dagster-dbt writes every dbt log line to stdout: kept off the console unless verbose.
        sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
        with dg.DagsterInstance.get() as instance, sink:
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                # Only this logger: Dagster's console logger would print every event.
                run_config={"loggers": {"cdp": {}}},
                asset_selection=selection,
            )
    outcome = summarise(result)
    outcome.warnings = handler.warnings
    return outcome


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
