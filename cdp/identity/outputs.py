"""Write the identity outputs, columnar: the link table, the clusters with the runs that
made and last changed them, the evidence (edges and near misses) and the history of
merges and splits.

The link table is written last: it is what the next run carries ids forward from, so a
run killed before it leaves the previous run's ids in force.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp import failpoints
from cdp.identity.cluster import Edge
from cdp.identity.prepare import cookie_links
from cdp.identity.scoring import ScoredPairs
from cdp.identity.stable_ids import STEM_LENGTH, HistoryEvent
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

ANONYMOUS = "anonymous_visitor"

LINK_SCHEMA = pa.schema(
    [
        ("source_name", pa.string()),
        ("source_record_id", pa.string()),
        ("unified_individual_id", pa.string()),
        ("record_kind", pa.string()),
        ("match_probability", pa.float64()),
        ("linked_by", pa.string()),
        ("run_id", pa.string()),
    ]
)

CLUSTER_SCHEMA = pa.schema(
    [
        ("unified_individual_id", pa.string()),
        ("person_records", pa.int64()),
        ("created_run_id", pa.string()),
        ("updated_run_id", pa.string()),
    ]
)

HISTORY_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("event", pa.string()),
        ("unified_individual_id", pa.string()),
        ("related_id", pa.string()),
        ("record_count", pa.int64()),
    ]
)


@dataclass
class EdgeSet:
    """Pairs as parallel arrays: record indexes, probability, stage."""

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    stage: list[str]

    @classmethod
    def of(cls, edges: list[Edge]) -> EdgeSet:
        return cls(
            np.array([e.left for e in edges], dtype=np.int64),
            np.array([e.right for e in edges], dtype=np.int64),
            np.array([e.probability for e in edges], dtype=np.float64),
            [e.stage for e in edges],
        )

    @classmethod
    def scored(cls, pairs: ScoredPairs, rows: np.ndarray, stage: str) -> EdgeSet:
        return cls(pairs.lo[rows], pairs.hi[rows], pairs.p[rows], [stage] * len(rows))

    def __add__(self, other: EdgeSet) -> EdgeSet:
        return EdgeSet(
            np.concatenate([self.left, other.left]),
            np.concatenate([self.right, other.right]),
            np.concatenate([self.probability, other.probability]),
            self.stage + other.stage,
        )


def link_table(records: pa.Table, record_ids: pa.Array, joined: EdgeSet, run_id: str) -> pa.Table:
    """One row per person record: its id, and the probability and stage of its strongest
    link (a match rule beats a Splink link of equal probability)."""
    n = records.num_rows
    best = np.full(n, np.nan)
    stage = np.full(n, "singleton", dtype=object)
    by_rule = np.array([not s.startswith("rule:") for s in joined.stage], dtype=bool)
    order = np.lexsort((np.array(joined.stage, dtype=object), by_rule, -joined.probability))
    for k in order.tolist():  # strongest first, a match rule first: the first one wins
        for i in (joined.left[k], joined.right[k]):
            if np.isnan(best[i]):
                best[i] = joined.probability[k]
                stage[i] = joined.stage[k]
    return pa.table(
        {
            "source_name": records["source_name"],
            "source_record_id": records["source_record_id"],
            "unified_individual_id": record_ids,
            "record_kind": pa.array(["person"] * n, pa.string()),
            "match_probability": pa.array(best, pa.float64(), mask=np.isnan(best)),
            "linked_by": pa.array(stage.tolist(), pa.string()),
            "run_id": pa.array([run_id] * n, pa.string()),
        },
        schema=LINK_SCHEMA,
    )


def cookie_table(con, uids: pa.Array, record_ids: pa.Array, run_id: str) -> pa.Table:
    """A cookie joins the person it logged into most (then most recently); it never joins
    two people together. `con`: a connect_inputs connection (one sort, in the query, where
    sorting the logins first and the result again cost 0.65 s at 1M, against 0.45)."""
    con.register("_membership", pa.table({"unique_id": uids, "unified_individual_id": record_ids}))
    try:
        return (
            con.sql(
                f"""
            select 'anonymous_visitor' as source_name, anonymous_id as source_record_id,
                unified_individual_id, 'anonymous_visitor' as record_kind,
                1.0::double as match_probability, 'deterministic:login' as linked_by,
                '{run_id.replace("'", "''")}' as run_id
            from ({cookie_links()}) as links join _membership using (unique_id)
            qualify row_number() over (
                partition by anonymous_id
                order by login_events desc nulls last, last_login_ts desc nulls last,
                    unique_id desc
            ) = 1
            order by anonymous_id
            """
            )
            .to_arrow_table()
            .cast(LINK_SCHEMA)
        )
    finally:
        con.unregister("_membership")


def _edge_fields(mw_names) -> list[pa.Field]:
    fields = [
        ("unified_individual_id", pa.string()),
        ("unique_id_l", pa.string()),
        ("unique_id_r", pa.string()),
        ("cluster_l", pa.string()),
        ("cluster_r", pa.string()),
        ("stage", pa.string()),
        ("match_probability", pa.float64()),
        ("household", pa.bool_()),
        ("match_weight", pa.float64()),
    ] + [(m, pa.float64()) for m in mw_names]
    return [pa.field(n, t) for n, t in fields]


def edge_table(
    edges: EdgeSet,
    pairs: ScoredPairs,
    uids: pa.Array,
    record_ids: pa.Array,
    joined: bool,
) -> pa.Table:
    """The pairs with their evidence. Near misses (`joined` false) that ended up in one
    cluster through other records are left out."""
    lo = np.minimum(edges.left, edges.right)
    hi = np.maximum(edges.left, edges.right)
    cl, cr = record_ids.take(pa.array(lo)), record_ids.take(pa.array(hi))
    keep = np.ones(len(lo), dtype=bool) if joined else pc.not_equal(cl, cr).to_numpy(False)
    rows = pairs.rows(lo, hi)[keep]
    missing = rows < 0
    take = np.where(missing, 0, rows)

    def from_pairs(values: np.ndarray) -> pa.Array:
        if not len(values):
            return pa.nulls(len(rows), pa.float64())
        return pa.array(values[take], mask=missing | np.isnan(values[take]))

    at = pa.array(np.flatnonzero(keep))
    cols = {
        "unified_individual_id": cl.take(at) if joined else pa.nulls(len(rows), pa.string()),
        "unique_id_l": uids.take(pa.array(lo[keep])),
        "unique_id_r": uids.take(pa.array(hi[keep])),
        "cluster_l": cl.take(at),
        "cluster_r": cr.take(at),
        "stage": pa.array([s for s, k in zip(edges.stage, keep, strict=True) if k], pa.string()),
        "match_probability": pa.array(edges.probability[keep], pa.float64()),
        "household": pa.array(
            pairs.household[take] if len(pairs.household) else np.zeros(len(rows), bool),
            mask=missing,
        ),
        "match_weight": from_pairs(pairs.weight),
    }
    for m in pairs.names:
        cols[m] = from_pairs(pairs.mw[m])
    table = pa.table(cols, schema=pa.schema(_edge_fields(pairs.names)))
    if joined:
        return table  # in the clustering's order, the same from run to run
    # Near misses follow the scoring's order, which DuckDB's threads vary (at 1M, two
    # runs of one increment wrote them in different orders): sorted by their records
    # (indexes in unique_id order), the same inputs write the same file.
    return table.take(pa.array(np.lexsort((hi[keep], lo[keep]))))


def previous_state(ws: Workspace):
    """The last run's ids: unique_id -> id, cluster sizes, age order and creating run."""
    path = ws.identity_dir / "unified_link_individual.parquet"
    previous, sizes = {}, Counter()
    if path.exists():
        t = pq.read_table(
            path, columns=["source_name", "source_record_id", "unified_individual_id"]
        )
        t = t.filter(pc.not_equal(t["source_name"], ANONYMOUS))
        keys = pc.binary_join_element_wise(t["source_name"], t["source_record_id"], ":")
        ids = t["unified_individual_id"].to_pylist()
        previous = dict(zip(keys.to_pylist(), ids, strict=True))
        sizes = Counter(ids)
    created, order = _created_by_age(ws)
    return previous, dict(sizes), order, created


def _created_by_age(ws: Workspace, ids: list[str] | None = None):
    """The last run's clusters (those of `ids` only, when given): id -> the run that
    created it, and id -> its age rank (smaller is older; the creating run, then the id)."""
    path = ws.identity_dir / "identity_clusters.parquet"
    if not path.exists():
        return {}, {}
    rows = pq.read_table(path, columns=["unified_individual_id", "created_run_id"])
    if ids is not None:
        rows = rows.filter(pc.is_in(rows["unified_individual_id"], pa.array(ids, pa.string())))
    created = dict(
        zip(
            rows["unified_individual_id"].to_pylist(),
            rows["created_run_id"].to_pylist(),
            strict=True,
        )
    )
    ranked = sorted(created, key=lambda uid: (created[uid] or "", uid))
    return created, {uid: i for i, uid in enumerate(ranked)}


@dataclass
class PreviousPart:
    """What an increment needs of the last run's ids (previous_part)."""

    ids: dict[str, str]  # unique_id -> old id, of the records redone or gone
    gone: set[str]  # records the last run linked that are no longer there
    sizes: dict[str, int]  # old id -> its records, for the old ids of those records
    order: dict[str, int]  # the same old ids by age (smaller is older)
    created: dict[str, str]  # the same old ids -> the run that created them
    taken: set[str]  # the old ids a new id of the part could take (previous_part)


def previous_part(
    ws: Workspace, con, redone: pa.Array, stems: list[str], people: pa.Table
) -> PreviousPart:
    """The last run's ids for the records an increment resolves again (`redone`) and for
    those that are gone, and the size, age and creating run of the old ids they held.
    The part is closed over clusters, so every record of those old ids is among them.
    Found in DuckDB from the last person links (`people`, as incremental.earlier_people
    read them; `con` reads int_person_records_prepared): a dict of every record's id
    (1.77 million at 1M) cost 1.9 s to build, finding the gone records 1.1 s more."""
    con.register("_redone", pa.table({"unique_id": redone}))
    con.register("_previous", people)
    con.execute(
        "create or replace temp table _gone as select unique_id from _previous "
        "anti join int_person_records_prepared using (unique_id); "
        "create or replace temp table _part as select * from _previous "
        "semi join (select unique_id from _redone union select unique_id from _gone) "
        "using (unique_id)"
    )
    part = con.sql("select * from _part").to_arrow_table()
    ids = dict(
        zip(part["unique_id"].to_pylist(), part["unified_individual_id"].to_pylist(), strict=True)
    )
    sizes = dict(
        con.execute(
            "select unified_individual_id, count(*) from _previous "
            "semi join (select distinct unified_individual_id from _part) "
            "using (unified_individual_id) group by 1"
        ).fetchall()
    )
    # their age is only compared among themselves: ranked among these old ids alone
    created, order = _created_by_age(ws, list(sizes))
    # Of the old ids, only those a new id of the part could collide with (beginning with
    # one of its clusters' `stems`, stable_ids.id_stem): a set of all of them (a million
    # at 1M) cost 0.8 s to build and copy.
    con.register("_stems", pa.table({"stem": pa.array(stems, pa.string())}))
    taken = {
        r[0]
        for r in con.execute(
            "select distinct unified_individual_id from _previous "
            f"where left(unified_individual_id, {STEM_LENGTH}) in (select stem from _stems)"
        ).fetchall()
    }
    con.unregister("_stems")
    gone = {r[0] for r in con.execute("select unique_id from _gone").fetchall()}
    con.execute("drop table _gone; drop table _part")
    con.unregister("_redone")
    con.unregister("_previous")
    return PreviousPart(ids, gone, sizes, order, created, taken)


def _old_updated(ws: Workspace, ids: list[str]) -> dict[str, str]:
    """The run that last changed each of these clusters."""
    path = ws.identity_dir / "identity_clusters.parquet"
    if not path.exists():
        return {}
    t = pq.read_table(path, columns=["unified_individual_id", "updated_run_id"])
    t = t.filter(pc.is_in(t["unified_individual_id"], pa.array(ids, pa.string())))
    return dict(
        zip(t["unified_individual_id"].to_pylist(), t["updated_run_id"].to_pylist(), strict=True)
    )


def clusters_table(
    ws: Workspace,
    run_id: str,
    ids: list[str],
    groups: list[list[str]],
    previous: dict[str, str],
    prev_created: dict[str, str],
) -> pa.Table:
    """One row per unified individual: its person records and the runs that created it
    and last changed its membership (an unchanged cluster keeps its old run)."""
    # (an increment passes only the clusters it redid: the others are left alone)
    wanted = set(ids)
    prev_members: dict[str, set[str]] = defaultdict(set)
    for m, old in previous.items():
        if old in wanted:
            prev_members[old].add(m)
    old_updated = _old_updated(ws, ids)
    updated = [
        run_id if set(members) != prev_members.get(uid, set()) else old_updated.get(uid, run_id)
        for uid, members in zip(ids, groups, strict=True)
    ]
    table = pa.table(
        {
            "unified_individual_id": pa.array(ids, pa.string()),
            "person_records": pa.array([len(g) for g in groups], pa.int64()),
            "created_run_id": pa.array([prev_created.get(u, run_id) for u in ids], pa.string()),
            "updated_run_id": pa.array(updated, pa.string()),
        },
        schema=CLUSTER_SCHEMA,
    )
    return table.sort_by("unified_individual_id")


def _history_table(run_id: str, events: list[HistoryEvent]) -> pa.Table:
    return pa.table(
        {
            "run_id": pa.array([run_id] * len(events), pa.string()),
            "event": pa.array([e.event for e in events], pa.string()),
            "unified_individual_id": pa.array(
                [e.unified_individual_id for e in events], pa.string()
            ),
            "related_id": pa.array([e.related_id for e in events], pa.string()),
            "record_count": pa.array([e.record_count for e in events], pa.int64()),
        },
        schema=HISTORY_SCHEMA,
    )


def _pending_path(ws: Workspace) -> Path:
    return ws.identity_dir / "identity_history.pending.parquet"


def append_history(ws: Workspace, run_id: str, events: list[HistoryEvent]) -> None:
    path = ws.identity_dir / "identity_history.parquet"
    old = (
        pq.read_table(path, schema=HISTORY_SCHEMA)
        if path.exists()
        else HISTORY_SCHEMA.empty_table()
    )
    # A rerun of the same run id replaces its own events instead of adding them twice.
    old = old.filter(pc.not_equal(old["run_id"], run_id)) if old.num_rows else old
    if not events and path.exists():
        return
    write_parquet(path, pa.concat_tables([old, _history_table(run_id, events)]))


def settle_history(ws: Workspace) -> None:
    """Finish or drop the history of a run killed while writing its outputs.

    The events of a run are first written aside, then the link table (the commit point:
    the next run carries ids forward from it), then the events are added to the
    history. If the links of the pending run were written, its events belong in the
    history; if not, the next run computes them again from the same old links, so they
    are dropped. Either way each event is written once.
    """
    pending = _pending_path(ws)
    if not pending.exists():
        return
    events = pq.read_table(pending, schema=HISTORY_SCHEMA)
    links = ws.identity_dir / "unified_link_individual.parquet"
    run_ids = set(events["run_id"].to_pylist())
    committed = None
    if links.exists() and len(run_ids) == 1:
        # Any row: an incremental run rewrites only the links of the part it resolved.
        (pending_run,) = run_ids
        written = pq.read_table(links, columns=["run_id"])["run_id"]
        committed = pending_run if pc.any(pc.equal(written, pending_run)).as_py() else None
    if committed is not None:
        path = ws.identity_dir / "identity_history.parquet"
        old = (
            pq.read_table(path, schema=HISTORY_SCHEMA)
            if path.exists()
            else HISTORY_SCHEMA.empty_table()
        )
        old = old.filter(pc.not_equal(old["run_id"], committed)) if old.num_rows else old
        write_parquet(path, pa.concat_tables([old, events]))
    pending.unlink()


OUTPUT_FILES = (
    "unified_link_individual.parquet",
    "identity_clusters.parquet",
    "identity_edges.parquet",
    "identity_near_misses.parquet",
    "identity_history.parquet",
)


def write_outputs(
    ws: Workspace,
    run_id: str,
    links: pa.Table,
    clusters: pa.Table | None,
    edges: pa.Table | None,
    near: pa.Table | None,
    events: list[HistoryEvent],
) -> list[str]:
    """Write what changed (None: the table stands as it is)."""
    d = ws.identity_dir
    d.mkdir(parents=True, exist_ok=True)
    # Before dbt built unified_individual, this stage wrote it here: drop the stale copy.
    (d / "unified_individual.parquet").unlink(missing_ok=True)
    tables = [
        (d / name, table)
        for name, table in (
            ("identity_edges.parquet", edges),
            ("identity_near_misses.parquet", near),
            ("identity_clusters.parquet", clusters),
        )
        if table is not None
    ]
    # Three files that do not depend on each other: pyarrow writes without the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(write_parquet, path, table) for path, table in tables]:
            done.result()
    # Events aside, links (the commit point), then the events into the history: a run
    # killed in between is settled by the next (settle_history).
    write_parquet(_pending_path(ws), _history_table(run_id, events))
    failpoints.reached("identity.outputs")  # events set aside, links not yet written
    write_parquet(d / "unified_link_individual.parquet", links)
    failpoints.reached("identity.links")  # links written, history not yet appended
    append_history(ws, run_id, events)
    _pending_path(ws).unlink(missing_ok=True)
    return [str(d / f) for f in OUTPUT_FILES]
