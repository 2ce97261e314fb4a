"""Resolve every source person record and logged-in visitor to a unified individual.

Stages: deterministic stitching on strong identifiers, Splink matching, guarded
clustering, stable ids. Writes unified_link_individual, unified_individual,
identity_edges, identity_near_misses and appends identity_history.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from splink import DuckDBAPI, Linker

from cdp.config.settings import load_settings
from cdp.identity.cluster import Edge, GuardedClusterer
from cdp.identity.model import check_blocking, splink_settings, train_model
from cdp.identity.prepare import build_records, connect_inputs, cookie_links, strong_ids
from cdp.identity.settings import IdentitySettings
from cdp.identity.stable_ids import assign_ids
from cdp.identity.unified import build_unified
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

Progress = Callable[[int, int, str], None]
ANONYMOUS = "anonymous_visitor"
STEPS = 6


@dataclass
class TrainResult:
    records: int
    trained: bool
    path: str
    seconds: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class ResolveResult:
    records: int = 0
    anonymous_visitors: int = 0
    clusters: int = 0
    cluster_size_distribution: dict[int, int] = field(default_factory=dict)
    largest_cluster: int = 0
    share_by_stage: dict[str, float] = field(default_factory=dict)
    ignored_identifiers: list[tuple[str, int]] = field(default_factory=list)
    blocking_comparisons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    paths: list[str] = field(default_factory=list)


def _settings(ws: Workspace, settings: IdentitySettings | None) -> IdentitySettings:
    if settings is not None:
        return settings
    return IdentitySettings.from_dict(load_settings(ws.settings_file).identity, ws.settings_file)


def _splink_db(ws: Workspace) -> DuckDBAPI:
    work = ws.tmp_dir / "splink"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # Big intermediate tables go to Parquet on disk, and DuckDB spills beyond its limit.
    con = duckdb.connect(config={"memory_limit": "3GB", "temp_directory": str(work / "spill")})
    return DuckDBAPI(con, materialisation="parquet", materialisation_dir=str(work))


def train(
    ws: Workspace, settings: IdentitySettings | None = None, progress: Progress | None = None
) -> TrainResult:
    from cdp.errors import CdpError

    started = time.perf_counter()
    settings = _settings(ws, settings)
    con = connect_inputs(ws)
    records = build_records(con)
    if records.num_rows < settings.min_training_records:
        raise CdpError(
            f"{records.num_rows} person records are too few to train on (identity.min_training_records "
            f"is {settings.min_training_records}); resolution uses the documented default parameters"
        )
    train_model(_splink_db(ws), records, settings, ws.identity_model_file)
    return TrainResult(
        records.num_rows, True, str(ws.identity_model_file), time.perf_counter() - started
    )


def _model_matches(ws: Workspace, settings: IdentitySettings) -> bool:
    import json

    try:
        model = json.loads(ws.identity_model_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    saved = [c.get("output_column_name") for c in model.get("comparisons", [])]
    return saved == [r.column for r in settings.comparisons]


def resolve(
    ws: Workspace,
    run_id: str,
    settings: IdentitySettings | None = None,
    progress: Progress | None = None,
) -> ResolveResult:
    started = time.perf_counter()
    settings = _settings(ws, settings)
    result = ResolveResult()
    step = _stepper(progress)
    con = connect_inputs(ws)
    records = build_records(con)
    n = records.num_rows
    result.records = n
    uids: list[str] = records.column("unique_id").to_pylist()
    index = {u: i for i, u in enumerate(uids)}
    step("deterministic stitching")

    det_edges, strong_map, ignored = _deterministic(con, settings, index)
    result.ignored_identifiers = ignored
    for t, count in ignored:
        result.warnings.append(
            f"ignored {count} {t} value(s) shared by more than {settings.max_identifier_records} records"
        )

    step("matching")
    prob_edges, near, evidence = _probabilistic(ws, records, settings, uids, result)

    step("clustering")
    clusterer = GuardedClusterer(
        n,
        records.column("birth_date").to_pylist(),
        [
            (k, *v) if k else None
            for k, v in zip(
                records.column("first_name_key").to_pylist(),
                records.column("first_name_variants").to_pylist(),
                strict=True,
            )
        ],
        strong_map,
        max_size=settings.max_cluster_size,
        min_cross_edges=settings.min_cross_edges,
        strong_threshold=settings.strong_match_threshold,
        date_conflict_edits=settings.birth_date_conflict_edits,
    )
    used_det = clusterer.add_deterministic(det_edges)
    used_prob = clusterer.add_probabilistic(prob_edges)
    # Strong pairs a guard kept apart are near misses too, with the guard's reason.
    near += [
        Edge(e.left, e.right, e.probability, f"kept apart: {why}") for e, why in clusterer.refused
    ]
    groups = sorted(
        (sorted(uids[i] for i in m) for m in clusterer.clusters().values()), key=lambda g: g[0]
    )

    step("stable ids")
    previous, prev_sizes, prev_order, prev_created = _previous(ws)
    ids, events = assign_ids(groups, previous, prev_sizes, prev_order)
    cluster_of = {m: uid for uid, members in zip(ids, groups, strict=True) for m in members}

    step("writing")
    link_rows = _link_rows(uids, cluster_of, used_det, used_prob, run_id)
    cookies = _cookie_rows(con, cluster_of, run_id)
    result.anonymous_visitors = len(cookies)
    _write_outputs(
        ws,
        run_id,
        records,
        link_rows + cookies,
        ids,
        groups,
        prev_created,
        previous,
        used_det + used_prob,
        near,
        evidence,
        uids,
        cluster_of,
        events,
        result,
    )
    sizes = Counter(len(g) for g in groups)
    result.clusters = len(groups)
    result.cluster_size_distribution = dict(sorted(sizes.items()))
    result.largest_cluster = max(sizes, default=0)
    by_stage = Counter(r["linked_by"].split(":")[0] for r in link_rows)
    result.share_by_stage = {k: v / max(n, 1) for k, v in sorted(by_stage.items())}
    result.seconds = time.perf_counter() - started
    step("done")
    return result


def _stepper(progress: Progress | None):
    state = {"i": 0}

    def step(label: str) -> None:
        state["i"] += 1
        if progress:
            progress(min(state["i"], STEPS), STEPS, label)

    return step


def _deterministic(con, settings: IdentitySettings, index: dict[str, int]):
    ids = strong_ids(con, settings.strong_identifiers).to_pylist()
    by_value: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in ids:
        if r["unique_id"] in index:
            by_value[(r["id_type"], r["id_value"])].append(index[r["unique_id"]])
    edges, ignored = [], Counter()
    strong: dict[int, dict[str, set[str]]] = defaultdict(dict)
    for (t, v), members in sorted(by_value.items()):
        members = sorted(set(members))
        if len(members) > settings.max_identifier_records:
            ignored[t] += 1
            continue
        for m in members:
            strong[m].setdefault(t, set()).add(v)
        edges += [Edge(members[0], m, 1.0, f"deterministic:{t}") for m in members[1:]]
    return edges, dict(strong), sorted(ignored.items())


def _probabilistic(ws, records: pa.Table, settings: IdentitySettings, uids, result: ResolveResult):
    if records.num_rows < 2:
        return [], [], Evidence.empty()
    db = _splink_db(ws)
    check_con = duckdb.connect()
    check_con.register("records", records)
    result.blocking_comparisons = check_blocking(check_con, "records", settings)
    trained = ws.identity_model_file.exists() and _model_matches(ws, settings)
    if not trained and records.num_rows >= settings.min_training_records:
        train_model(_splink_db(ws), records, settings, ws.identity_model_file)
        trained = True
    if trained:
        model = str(ws.identity_model_file)
    else:
        result.warnings.append(
            f"only {records.num_rows} person records: too few to train, so the documented default "
            "match parameters are used (see docs/identity.md)"
        )
        model = splink_settings(settings, trained=False)
    linker = Linker(db.register(records), model, log_level=logging.WARNING)
    preds = linker.inference.predict(threshold_match_probability=settings.near_miss_threshold)
    rel = preds.as_duckdbpyrelation()
    mw_cols = [c for c in rel.columns if c.startswith("mw_")]
    # Columnar all the way: at a million people the scored pairs run into the millions.
    scored = rel.select(
        ", ".join(["unique_id_l", "unique_id_r", "match_probability", "match_weight", *mw_cols])
    ).to_arrow_table()
    uid_values = pa.array(uids, pa.string())
    left = pc.index_in(scored["unique_id_l"], value_set=uid_values).to_numpy(zero_copy_only=False)
    right = pc.index_in(scored["unique_id_r"], value_set=uid_values).to_numpy(zero_copy_only=False)
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    p = scored["match_probability"].to_numpy(zero_copy_only=False)
    evidence = Evidence(
        lo,
        hi,
        scored["match_weight"].to_numpy(zero_copy_only=False),
        {c: scored[c].to_numpy(zero_copy_only=False) for c in mw_cols},
    )
    strong = p >= settings.match_threshold
    edges = [
        Edge(int(a), int(b), float(q), "probabilistic")
        for a, b, q in zip(lo[strong], hi[strong], p[strong], strict=True)
    ]
    near = [
        Edge(int(a), int(b), float(q), "near_miss")
        for a, b, q in zip(lo[~strong], hi[~strong], p[~strong], strict=True)
    ]
    return edges, near, evidence


class Evidence:
    """Match weights of every scored pair, looked up by (smaller index, larger index)."""

    def __init__(self, lo, hi, weights, per_comparison: dict):
        self.names = sorted(per_comparison)
        self._weights = weights
        self._mw = per_comparison
        self._row = {
            (int(a), int(b)): i
            for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True))
        }

    @classmethod
    def empty(cls) -> Evidence:
        return cls(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([]), {})

    def get(self, key: tuple[int, int]) -> tuple[float | None, dict]:
        i = self._row.get(key)
        if i is None:
            return None, {}
        return float(self._weights[i]), {m: float(v[i]) for m, v in self._mw.items()}


def _previous(ws: Workspace):
    path = ws.identity_dir / "unified_link_individual.parquet"
    previous, sizes, order, created = {}, Counter(), {}, {}
    if path.exists():
        for r in pq.read_table(
            path, columns=["source_name", "source_record_id", "unified_individual_id"]
        ).to_pylist():
            if r["source_name"] == ANONYMOUS:
                continue
            previous[f"{r['source_name']}:{r['source_record_id']}"] = r["unified_individual_id"]
            sizes[r["unified_individual_id"]] += 1
    upath = ws.identity_dir / "unified_individual.parquet"
    if upath.exists():
        for i, r in enumerate(
            sorted(
                pq.read_table(
                    upath, columns=["unified_individual_id", "created_run_id"]
                ).to_pylist(),
                key=lambda r: (r["created_run_id"] or "", r["unified_individual_id"]),
            )
        ):
            order[r["unified_individual_id"]] = i
            created[r["unified_individual_id"]] = r["created_run_id"]
    return previous, dict(sizes), order, created


def _link_rows(uids, cluster_of, used_det, used_prob, run_id):
    best: dict[int, tuple[float, str]] = {}
    for e in used_det + used_prob:
        for i in (e.left, e.right):
            cur = best.get(i)
            if (
                cur is None
                or e.probability > cur[0]
                or (e.probability == cur[0] and e.stage < cur[1])
            ):
                best[i] = (e.probability, e.stage)
    rows = []
    for i, u in enumerate(uids):
        source_name, source_record_id = u.split(":", 1)
        p, stage = best.get(i, (None, "singleton"))
        rows.append(
            {
                "source_name": source_name,
                "source_record_id": source_record_id,
                "unified_individual_id": cluster_of[u],
                "record_kind": "person",
                "match_probability": p,
                "linked_by": stage,
                "run_id": run_id,
            }
        )
    return rows


def _cookie_rows(con, cluster_of, run_id):
    """A cookie joins the person it logged into most; it never joins two people together."""
    best: dict[str, tuple[int, object, str]] = {}
    for r in cookie_links(con).to_pylist():
        if r["unique_id"] not in cluster_of:
            continue
        key = (r["login_events"] or 0, r["last_login_ts"] or 0, r["unique_id"])
        cur = best.get(r["anonymous_id"])
        if cur is None or key > cur:
            best[r["anonymous_id"]] = key
    return [
        {
            "source_name": ANONYMOUS,
            "source_record_id": cookie,
            "unified_individual_id": cluster_of[key[2]],
            "record_kind": ANONYMOUS,
            "match_probability": 1.0,
            "linked_by": "deterministic:login",
            "run_id": run_id,
        }
        for cookie, key in sorted(best.items())
    ]


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


def _write_outputs(
    ws,
    run_id,
    records,
    link_rows,
    ids,
    groups,
    prev_created,
    previous,
    used_edges,
    near,
    evidence,
    uids,
    cluster_of,
    events,
    result,
):
    ws.identity_dir.mkdir(parents=True, exist_ok=True)
    prev_members = defaultdict(set)
    for m, old in previous.items():
        prev_members[old].add(m)
    # Unchanged clusters keep the run that last changed them.
    old_updated = _old_updated(ws)
    meta = {"unified_individual_id": [], "created_run_id": [], "updated_run_id": []}
    for uid, members in zip(ids, groups, strict=True):
        changed = set(members) != prev_members.get(uid, set())
        meta["unified_individual_id"].append(uid)
        meta["created_run_id"].append(prev_created.get(uid, run_id))
        meta["updated_run_id"].append(run_id if changed else old_updated.get(uid, run_id))
    membership = pa.table(
        {
            "unique_id": pa.array([m for members in groups for m in members], pa.string()),
            "unified_individual_id": pa.array(
                [uid for uid, members in zip(ids, groups, strict=True) for _ in members],
                pa.string(),
            ),
        }
    )
    uni = build_unified(
        records, membership, pa.table({k: pa.array(v, pa.string()) for k, v in meta.items()})
    )
    mw_names = evidence.names

    def edge_table(edges: list[Edge], joined: bool) -> pa.Table:
        cols: dict[str, list] = {f.name: [] for f in _edge_fields(mw_names)}
        for e in edges:
            key = (min(e.left, e.right), max(e.left, e.right))
            w, mws = evidence.get(key)
            cl, cr = cluster_of[uids[key[0]]], cluster_of[uids[key[1]]]
            if not joined and cl == cr:
                continue  # joined after all, through other records
            for name, value in (
                ("unified_individual_id", cl if joined else None),
                ("unique_id_l", uids[key[0]]),
                ("unique_id_r", uids[key[1]]),
                ("cluster_l", cl),
                ("cluster_r", cr),
                ("stage", e.stage),
                ("match_probability", e.probability),
                ("match_weight", w),
            ):
                cols[name].append(value)
            for m in mw_names:
                cols[m].append(mws.get(m))
        return pa.table(cols, schema=pa.schema(_edge_fields(mw_names)))

    kept = edge_table(used_edges, joined=True)
    near_t = edge_table(near, joined=False)
    link = pa.Table.from_pylist(link_rows, schema=LINK_SCHEMA)
    write_parquet(ws.identity_dir / "identity_edges.parquet", kept)
    write_parquet(ws.identity_dir / "identity_near_misses.parquet", near_t)
    write_parquet(ws.identity_dir / "unified_individual.parquet", uni)
    # The link table last: it is what the next run carries ids forward from.
    write_parquet(ws.identity_dir / "unified_link_individual.parquet", link)
    _append_history(ws, run_id, events)
    result.paths = [
        str(ws.identity_dir / f)
        for f in (
            "unified_link_individual.parquet",
            "unified_individual.parquet",
            "identity_edges.parquet",
            "identity_near_misses.parquet",
            "identity_history.parquet",
        )
    ]


def _edge_fields(mw_names) -> list[pa.Field]:
    fields = [
        ("unified_individual_id", pa.string()),
        ("unique_id_l", pa.string()),
        ("unique_id_r", pa.string()),
        ("cluster_l", pa.string()),
        ("cluster_r", pa.string()),
        ("stage", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
    ] + [(m, pa.float64()) for m in mw_names]
    return [pa.field(n, t) for n, t in fields]


def _old_updated(ws) -> dict[str, str]:
    path = ws.identity_dir / "unified_individual.parquet"
    if not path.exists():
        return {}
    t = pq.read_table(path, columns=["unified_individual_id", "updated_run_id"])
    return dict(
        zip(t["unified_individual_id"].to_pylist(), t["updated_run_id"].to_pylist(), strict=True)
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


def _append_history(ws, run_id, events) -> None:
    path = ws.identity_dir / "identity_history.parquet"
    old = (
        pq.read_table(path, schema=HISTORY_SCHEMA)
        if path.exists()
        else HISTORY_SCHEMA.empty_table()
    )
    # A rerun of the same run id replaces its own events instead of adding them twice.
    old = old.filter(pa.compute.not_equal(old["run_id"], run_id)) if old.num_rows else old
    if not events and path.exists():
        return
    new = pa.Table.from_pylist(
        [
            {
                "run_id": run_id,
                "event": e.event,
                "unified_individual_id": e.unified_individual_id,
                "related_id": e.related_id,
                "record_count": e.record_count,
            }
            for e in events
        ],
        schema=HISTORY_SCHEMA,
    )
    write_parquet(path, pa.concat_tables([old, new]))
