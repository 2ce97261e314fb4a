"""Resolve every source person record and logged-in visitor to a unified individual.

Stages: match rules (cdp.identity.match_rules), Splink matching (cdp.identity.scoring),
guarded clustering, stable ids; then the outputs (cdp.identity.outputs):
unified_link_individual, identity_clusters, identity_edges, identity_near_misses and
identity_history. The input is one dbt model (int_person_records_prepared) and the
logged-in cookies; the reconciled person (names, birth date) is the dbt model
unified_individual, built on these outputs.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.config.settings import load_settings
from cdp.errors import CdpError
from cdp.harmonise.normalise import name_variants
from cdp.identity.cluster import Edge, GuardedClusterer
from cdp.identity.match_rules import RulePairs, all_rule_pairs
from cdp.identity.model import train_model
from cdp.identity.outputs import (
    EdgeSet,
    clusters_table,
    cookie_table,
    edge_table,
    link_table,
    previous_state,
    settle_history,
    write_outputs,
)
from cdp.identity.prepare import build_records, connect_inputs
from cdp.identity.scoring import ScoredPairs, score_pairs, splink_db, splink_input
from cdp.identity.settings import IdentitySettings
from cdp.identity.stable_ids import assign_ids
from cdp.workspace import Workspace

Progress = Callable[[int, int, str], None]
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
    # Per match rule: pairs found, records it linked, values over the frequency guard.
    match_rules: list[dict] = field(default_factory=list)
    ignored_identifiers: list[tuple[str, int]] = field(default_factory=list)
    blocking_comparisons: dict[str, int] = field(default_factory=dict)
    blocking_left_out: list[dict] = field(default_factory=list)
    household_share: float | None = None  # learnt share of household pairs that are one person
    family_guards: bool = True
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    paths: list[str] = field(default_factory=list)


def _settings(ws: Workspace, settings: IdentitySettings | None) -> IdentitySettings:
    if settings is not None:
        return settings
    return IdentitySettings.from_dict(load_settings(ws.settings_file).identity, ws.settings_file)


def train(
    ws: Workspace, settings: IdentitySettings | None = None, progress: Progress | None = None
) -> TrainResult:
    started = time.perf_counter()
    settings = _settings(ws, settings)
    records = build_records(connect_inputs(ws))
    if records.num_rows < settings.min_training_records:
        raise CdpError(
            f"{records.num_rows} person records are too few to train on (identity.min_training_records "
            f"is {settings.min_training_records}); resolution uses the documented default parameters"
        )
    try:
        train_model(
            splink_db(ws), splink_input(records, settings), settings, ws.identity_model_file
        )
    finally:
        shutil.rmtree(ws.tmp_dir / "splink", ignore_errors=True)
    return TrainResult(
        records.num_rows, True, str(ws.identity_model_file), time.perf_counter() - started
    )


def resolve(
    ws: Workspace,
    run_id: str,
    settings: IdentitySettings | None = None,
    progress: Progress | None = None,
) -> ResolveResult:
    try:
        return _resolve(ws, run_id, settings, progress)
    finally:
        # Splink's working tables hold every email and phone: never leave them behind.
        shutil.rmtree(ws.tmp_dir / "splink", ignore_errors=True)


def _resolve(
    ws: Workspace,
    run_id: str,
    settings: IdentitySettings | None,
    progress: Progress | None,
) -> ResolveResult:
    started = time.perf_counter()
    settle_history(ws)  # a run killed mid-output leaves its events aside
    settings = _settings(ws, settings)
    result = ResolveResult()
    step = _stepper(progress)
    con = connect_inputs(ws)
    records = build_records(con)
    n = result.records = records.num_rows
    uids = records.column("unique_id").combine_chunks()
    step("match rules")
    rule_pairs, strong_map, shared = all_rule_pairs(records, settings)
    records = _without_shared(records, shared)
    det_edges = [
        Edge(int(a), int(b), 1.0, f"rule:{rp.rule}")
        for rp in rule_pairs
        for a, b in zip(rp.lo.tolist(), rp.hi.tolist(), strict=True)
    ]
    ignored: Counter = Counter()
    for rp in rule_pairs:
        ignored.update(rp.ignored)
        for kind, count in sorted(rp.ignored.items()):
            result.warnings.append(
                f"match rule {rp.rule}: ignored {count} {kind} value(s) shared by more than "
                f"{settings.max_identifier_records} records"
            )
    result.ignored_identifiers = sorted(ignored.items())

    step("matching")
    pairs = score_pairs(ws, records, settings)
    result.blocking_comparisons = pairs.blocking.comparisons
    result.blocking_left_out = pairs.blocking.left_out
    result.household_share = pairs.household_share
    result.family_guards = _family_guards(settings, pairs.household_share)
    if not result.family_guards and settings.family_guards == "auto":
        result.warnings.append(
            f"{pairs.household_share:.0%} of the pairs that share a surname and a home are one "
            "person: the data shows no families, so unrelated first names and birth dates "
            "are not kept apart (identity.family_guards)"
        )
    result.warnings += pairs.warnings

    step("clustering")
    clusterer = _clusterer(records, strong_map, settings, result.family_guards)
    joined_det = clusterer.add_deterministic(det_edges)
    result.match_rules = _rule_report(rule_pairs, joined_det)
    strong = np.flatnonzero(pairs.p >= settings.match_threshold)
    joined_rows = strong[
        np.asarray(
            clusterer.add_probabilistic(pairs.lo[strong], pairs.hi[strong], pairs.p[strong]),
            dtype=np.int64,
        )
    ]
    cluster_no = _cluster_numbers(clusterer, n)
    refused = clusterer.refused
    del clusterer  # its groups are the biggest Python structure of the run
    groups = _groups(uids.to_pylist(), cluster_no)

    step("stable ids")
    previous, prev_sizes, prev_order, prev_created = previous_state(ws)
    ids, events = assign_ids(groups, previous, prev_sizes, prev_order)
    record_ids = pa.array(ids, pa.string()).take(pa.array(cluster_no))

    step("writing")
    joined = EdgeSet.of(joined_det) + EdgeSet.scored(pairs, joined_rows, "probabilistic")
    near = _near_misses(pairs, strong, refused)
    links = link_table(records, record_ids, joined, run_id)
    cookies = cookie_table(con, uids, record_ids, run_id)
    result.paths = write_outputs(
        ws,
        run_id,
        pa.concat_tables([links, cookies]),
        clusters_table(ws, run_id, ids, groups, previous, prev_created),
        edge_table(joined, pairs, uids, record_ids, joined=True),
        edge_table(near, pairs, uids, record_ids, joined=False),
        events,
    )
    result.anonymous_visitors = cookies.num_rows
    sizes = Counter(len(g) for g in groups)
    result.clusters = len(groups)
    result.cluster_size_distribution = dict(sorted(sizes.items()))
    result.largest_cluster = max(sizes, default=0)
    by_stage: Counter = Counter()
    for v in pc.value_counts(links["linked_by"]).to_pylist():
        by_stage[v["values"].split(":")[0]] += v["counts"]
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


def _shared_values(column: pa.ChunkedArray, build=lambda v: v) -> list:
    """The column as a list in which equal values are one Python object: a million
    records hold a few thousand first names and some twenty thousand birth dates."""
    encoded = column.combine_chunks().dictionary_encode()
    values = [build(v) for v in encoded.dictionary.to_pylist()]
    return [None if i is None else values[i] for i in encoded.indices.to_pylist()]


def _family_guards(settings: IdentitySettings, household_share: float | None) -> bool:
    if settings.family_guards != "auto":
        return settings.family_guards
    return household_share is None or household_share < settings.no_family_share


def _clusterer(
    records: pa.Table, strong_map, settings: IdentitySettings, family_guards: bool = True
) -> GuardedClusterer:
    return GuardedClusterer(
        records.num_rows,
        _shared_values(records.column("birth_date")),
        # The same related names as the records' first_name_variants, once per name.
        _shared_values(
            records.column("first_name_key"), lambda k: (k, *name_variants(k)) if k else None
        ),
        strong_map,
        max_size=settings.max_cluster_size,
        min_cross_edges=settings.min_cross_edges,
        strong_threshold=settings.strong_match_threshold,
        date_conflict_edits=settings.birth_date_conflict_edits,
        last_names=_shared_values(records.column("last_name_key"), lambda k: (k,)),
        family_guards=family_guards,
    )


def _near_misses(pairs: ScoredPairs, strong: np.ndarray, refused) -> EdgeSet:
    """Pairs scored below the match threshold, and strong pairs a guard kept apart (with
    the guard's reason)."""
    below = np.ones(len(pairs.p), dtype=bool)
    below[strong] = False
    kept_apart = EdgeSet.of(
        [Edge(e.left, e.right, e.probability, f"kept apart: {why}") for e, why in refused]
    )
    return EdgeSet.scored(pairs, np.flatnonzero(below), "near_miss") + kept_apart


def _cluster_numbers(clusterer: GuardedClusterer, n: int) -> np.ndarray:
    """Cluster number per record, numbered in order of each cluster's smallest member
    (records are sorted by unique_id, so that is its smallest unique_id)."""
    roots = np.fromiter((clusterer.find(i) for i in range(n)), dtype=np.int64, count=n)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def _groups(uids: list[str], cluster_no: np.ndarray) -> list[list[str]]:
    """Member unique_ids per cluster, in cluster-number order."""
    if not uids:
        return []
    order = np.argsort(cluster_no, kind="stable")
    bounds = np.flatnonzero(np.diff(cluster_no[order])) + 1
    return [[uids[i] for i in part.tolist()] for part in np.split(order, bounds)]


def _without_shared(records: pa.Table, shared: dict[str, set[str]]) -> pa.Table:
    """Null the compared email and phone where a household shares them: for Splink they
    are no evidence of one person."""
    for column, field_name in (("email_key", "email"), ("phone", "phone")):
        values = shared.get(field_name)
        if values and column in records.column_names:
            col = records.column(column)
            mask = pc.is_in(col, value_set=pa.array(sorted(values), pa.string()))
            at = records.schema.get_field_index(column)
            records = records.set_column(at, column, pc.if_else(mask, None, col))
    return records


def _rule_report(rule_pairs: list[RulePairs], joined: list[Edge]) -> list[dict]:
    """Per rule: the pairs it found, the records its accepted links joined, and the
    values the frequency guard ignored (counted, never listed)."""
    linked: dict[str, set[int]] = {}
    for e in joined:
        linked.setdefault(e.stage.removeprefix("rule:"), set()).update((e.left, e.right))
    return [
        {
            "rule": rp.rule,
            "pairs": len(rp.lo),
            "records_linked": len(linked.get(rp.rule, ())),
            "ignored_values": int(sum(rp.ignored.values())),
            "ignored_records": rp.ignored_records,
        }
        for rp in rule_pairs
    ]
