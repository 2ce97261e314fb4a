"""Whether the marts build is an increment, and which loads are new to it.

unified_individual and unified_contact_point are per person: a person's rows depend only
on their cluster and their records. So an increment computes only the people whose
cluster changed or who have a record in a load the marts have not seen
(int_unified_individuals_changed) and keeps everyone else's rows from the last build.

`.cdp/marts_built.json` records what the last successful marts build saw: the run's
fingerprint (configuration and code, cdp.run_plan) and every raw load then in the lake.
The next build is an increment only when all of this holds, and is full otherwise:
- the engine is DuckDB (Spark builds its marts whole);
- no full refresh was asked for;
- the fingerprint is the same;
- every load seen then is still in the lake (a retired or erased load changes rows that
  no new load points to);
- last build's files are whole (Parquet footers readable).

The record is removed before a build starts and written again only after it succeeded,
so a killed or failed build leaves none and the next build is full. A build that selects
only some of the three models (one asset materialised from the UI) builds those whole
and leaves the next build full; one that selects none of them leaves the record as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from cdp.workspace import Workspace

STATE = "marts_built.json"
ENV = "CDP_MARTS_INCREMENT"
# The marts an increment reads back (the models that use previous_output()).
KEPT = ("unified_individual", "unified_contact_point")
MODELS = ("int_unified_individuals_changed", *KEPT)  # what an increment must build together


def _state(ws: Workspace) -> Path:
    return ws.state_dir / STATE


def live_loads(ws: Workspace) -> dict[str, list[str]]:
    """Every source's loads in the raw lake (folders `load_id=...`), sorted."""
    out: dict[str, list[str]] = {}
    if not ws.raw_dir.is_dir():
        return out
    for source in sorted(p for p in ws.raw_dir.iterdir() if p.is_dir()):
        loads = sorted(
            p.name.split("=", 1)[1]
            for p in source.iterdir()
            if p.is_dir() and p.name.startswith("load_id=")
        )
        out[source.name] = loads
    return out


def _whole(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except (OSError, ValueError):
        return False
    return True


def increment(ws: Workspace, *, engine: str, full_refresh: bool) -> tuple[dict | None, str]:
    """({"new_loads": {source: [load id]}}, why) for an increment; (None, why) for a full
    build."""
    from cdp.run_plan import fingerprint

    if engine != "duckdb":
        return None, f"the {engine} engine builds the marts whole"
    if full_refresh:
        return None, "full refresh"
    try:
        seen = json.loads(_state(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "no earlier marts build to start from"
    if seen.get("fingerprint") != fingerprint(ws):
        return None, "configuration or code changed since the last marts build"
    live = live_loads(ws)
    before: dict[str, list[str]] = seen.get("loads") or {}
    for source, loads in before.items():
        gone = set(loads) - set(live.get(source, []))
        if gone:
            return None, f"{len(gone)} load(s) of {source} left the lake since the last build"
    for name in KEPT:
        if not _whole(ws.marts_dir / f"{name}.parquet"):
            return None, f"{name} of the last build is missing or incomplete"
    new = {}
    for source, loads in live.items():
        old = set(before.get(source, []))
        if fresh := [x for x in loads if x not in old]:
            new[source] = fresh
    return {"new_loads": new}, "increment"


def plan_build(
    ws: Workspace, selected: set[str], *, engine: str, full_refresh: bool
) -> tuple[dict | None, str, str]:
    """(increment or None, why, scope) for a marts build of the `selected` models. Scope:
    `all` of MODELS (the build may be an increment; its record is rewritten), `some`
    (built whole; the record goes) or `none` (the record stays as it is)."""
    chosen = selected & set(MODELS)
    if not chosen:
        return None, "the per-person marts are not part of this build", "none"
    if chosen != set(MODELS):
        return None, "only some of the per-person marts are part of this build", "some"
    increment_, why = increment(ws, engine=engine, full_refresh=full_refresh)
    return increment_, why, "all"


def forget(ws: Workspace) -> None:
    """The next marts build is full (before a build, and after an erasure)."""
    _state(ws).unlink(missing_ok=True)


def record(ws: Workspace) -> None:
    """After a successful marts build: what it saw."""
    from cdp.io.atomic import write_text
    from cdp.run_plan import fingerprint

    state = {"fingerprint": fingerprint(ws), "loads": live_loads(ws)}
    write_text(_state(ws), json.dumps(state, indent=1) + "\n")
