"""What a run has to do: nothing, everything, or what the new files require.

After each successful run, `.cdp/last_run.json` records a fingerprint of everything a
run's result depends on besides the landed files: cdp.yml, sources/, segments/,
activations/, the saved identity model, the dbt project and this package's code. The
next run compares:
- the last run did not finish, the fingerprint differs, or `--full-refresh`: everything;
- only new or changed landing files: their sources' ingestion and what depends on it
  (Dagster's asset graph says what, down to single dbt models);
- neither: nothing, said in one line, in about a second (Dagster is not even loaded).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cdp.workspace import Workspace

STATE = "last_run.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CODE = ("cdp", "dagster_project", "dbt_models")


@dataclass
class RunPlan:
    full: bool
    reason: str
    sources: dict[str, int] = field(default_factory=dict)  # source -> new or changed files

    @property
    def nothing(self) -> bool:
        return not self.full and not self.sources


def _state_path(ws: Workspace) -> Path:
    return ws.state_dir / STATE


def read_state(ws: Workspace) -> dict:
    try:
        return json.loads(_state_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_state(ws: Workspace, **values) -> None:
    from cdp.io.atomic import write_text

    state = read_state(ws) | values
    write_text(_state_path(ws), json.dumps(state, indent=1) + "\n")


def _files(root: Path, patterns: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        out += [p for p in root.glob(pattern) if p.is_file()]
    return sorted(out)


CONFIG = (
    "cdp.yml",
    "identity_model.json",
    "sources/*.y*ml",
    "segments/*.y*ml",
    "activations/*.y*ml",
)


def code_files(root: Path) -> list[Path]:
    """The files of code under `root` a run's result depends on (not dbt's output)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".sql", ".yml", ".yaml", ".csv", ".json")
        and not {"target", "logs", "__pycache__"} & set(p.parts)
    )


def fingerprint(ws: Workspace, config_files: tuple[str, ...] = CONFIG) -> str:
    """A hash of the configuration and code a run's result depends on (`config_files`:
    the workspace files that count, all of them by default)."""
    h = hashlib.sha256()
    config = [(ws.root, p) for p in _files(ws.root, config_files)]
    code: list[Path] = []
    for top in CODE:
        code += code_files(PACKAGE_ROOT / top)
    # Paths relative to their root: the same workspace and code in another folder (a
    # moved workspace, a second clone) are the same inputs, not a reason to rebuild.
    for root, path in [*config, *((PACKAGE_ROOT, p) for p in sorted(code))]:
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def pending_sources(ws: Workspace) -> dict[str, int]:
    """Sources with new or changed landing files, and how many."""
    from cdp.config.sources import load_sources
    from cdp.ingest import pending_files

    out = {}
    for spec in load_sources(ws.sources_dir):
        n = len(pending_files(ws, spec))
        if n:
            out[spec.name] = n
    return out


def plan_run(ws: Workspace, full_refresh: bool = False) -> RunPlan:
    state = read_state(ws)
    if full_refresh:
        return RunPlan(True, "--full-refresh")
    if state.get("status") == "stale":
        return RunPlan(True, f"{state.get('why', 'the lake was changed')} since the last run")
    if state.get("status") != "success":
        reason = "first run" if not state else "the last run did not finish"
        return RunPlan(True, reason)
    if state.get("fingerprint") != fingerprint(ws):
        return RunPlan(True, "configuration or code changed since the last run")
    sources = pending_sources(ws)
    if sources:
        files = sum(sources.values())
        return RunPlan(False, f"{files} new or changed file(s)", sources)
    return RunPlan(
        False, f"nothing new since run {state.get('run_id')} ({state.get('finished_at')})"
    )


def restore_state(ws: Workspace, state: dict) -> None:
    """Put back a state read before (an empty one: no run has finished)."""
    from cdp.io.atomic import write_text

    if state:
        write_text(_state_path(ws), json.dumps(state, indent=1) + "\n")
    else:
        _state_path(ws).unlink(missing_ok=True)


def run_started(ws: Workspace) -> None:
    write_state(ws, status="running", started_at=datetime.now(UTC).isoformat(timespec="seconds"))


def run_finished(ws: Workspace, run_id: str, success: bool) -> None:
    if not success:
        write_state(ws, status="failed", run_id=run_id)
        return
    write_state(
        ws,
        status="success",
        run_id=run_id,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        fingerprint=fingerprint(ws),
    )


def invalidate(ws: Workspace, why: str) -> None:
    """The next run does everything (after an erasure rewrote the lake and dropped dbt's
    database file)."""
    from cdp.harmonise import increments

    increments.forget(ws)
    if _state_path(ws).exists():
        write_state(ws, status="stale", why=why)
