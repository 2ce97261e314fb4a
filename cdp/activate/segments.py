"""Evaluate segments over customer_360 into `lake/marts/segment_membership.parquet`.

Membership history (who entered or left each segment in which run) is appended to
`segment_membership_history.parquet`, so marketers can see how a segment moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import pyarrow as pa

from cdp.activate.specs import SegmentSpec
from cdp.errors import ConfigError
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

MEMBERSHIP = "segment_membership.parquet"
HISTORY = "segment_membership_history.parquet"


@dataclass
class SegmentResult:
    sizes: dict[str, int] = field(default_factory=dict)
    entered: dict[str, int] = field(default_factory=dict)
    exited: dict[str, int] = field(default_factory=dict)


def _order(specs: list[SegmentSpec], directory: Path) -> list[SegmentSpec]:
    by_name = {s.name: s for s in specs}
    graph = {s.name: set(s.include) | set(s.exclude) for s in specs}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        cycle = " -> ".join(e.args[1])
        raise ConfigError(
            directory, f"segments include/exclude each other in a cycle: {cycle}"
        ) from None
    return [by_name[n] for n in order]


def evaluate_segments(ws: Workspace, specs: list[SegmentSpec], run_id: str) -> SegmentResult:
    c360 = ws.marts_dir / "customer_360.parquet"
    con = duckdb.connect()
    con.execute(f"create view customer_360 as select * from read_parquet('{c360}')")
    members: dict[str, set[str]] = {}
    for spec in _order(specs, ws.segments_dir):
        try:
            rows = con.execute(
                f"select unified_individual_id from customer_360 where ({spec.filter})"
            ).fetchall()
        except duckdb.Error as e:
            first_line = str(e).splitlines()[0]
            raise ConfigError(
                ws.segments_dir / f"{spec.name}.yml",
                f"filter: not valid over customer_360: {first_line}",
            ) from None
        ids = {r[0] for r in rows}
        for inc in spec.include:
            ids |= members[inc]
        for exc in spec.exclude:
            ids -= members[exc]
        members[spec.name] = ids

    names, uids = [], []
    for name in sorted(members):
        for uid in sorted(members[name]):
            names.append(name)
            uids.append(uid)
    table = pa.table(
        {
            "segment_name": pa.array(names, pa.string()),
            "unified_individual_id": pa.array(uids, pa.string()),
            "run_id": pa.array([run_id] * len(names), pa.string()),
        }
    )
    previous = _previous_members(ws.marts_dir / MEMBERSHIP)
    result = SegmentResult(sizes={n: len(m) for n, m in members.items()})
    _append_history(ws.marts_dir / HISTORY, previous, members, run_id, result)
    write_parquet(ws.marts_dir / MEMBERSHIP, table)
    return result


def _previous_members(path: Path) -> dict[str, set[str]]:
    if not path.exists():
        return {}
    out: dict[str, set[str]] = {}
    rows = duckdb.execute(
        f"select segment_name, unified_individual_id from read_parquet('{path}')"
    ).fetchall()
    for seg, uid in rows:
        out.setdefault(seg, set()).add(uid)
    return out


def _append_history(path, previous, current, run_id, result: SegmentResult) -> None:
    events = []
    for seg in sorted(set(previous) | set(current)):
        before, after = previous.get(seg, set()), current.get(seg, set())
        entered, exited = sorted(after - before), sorted(before - after)
        result.entered[seg], result.exited[seg] = len(entered), len(exited)
        events += [(run_id, seg, uid, "entered") for uid in entered]
        events += [(run_id, seg, uid, "exited") for uid in exited]
    if not events and path.exists():
        return  # a rerun that changes nothing writes nothing
    new = pa.table(
        {
            "run_id": [e[0] for e in events],
            "segment_name": [e[1] for e in events],
            "unified_individual_id": [e[2] for e in events],
            "event": [e[3] for e in events],
        },
        schema=pa.schema(
            [
                ("run_id", pa.string()),
                ("segment_name", pa.string()),
                ("unified_individual_id", pa.string()),
                ("event", pa.string()),
            ]
        ),
    )
    if path.exists():
        old = duckdb.execute(f"select * from read_parquet('{path}')").to_arrow_table()
        new = pa.concat_tables([old.cast(new.schema), new])
    write_parquet(path, new)
