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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp import failpoints
from cdp.config.settings import load_settings
from cdp.errors import CdpError
from cdp.harmonise.normalise import name_variants
from cdp.identity import incremental, pair_store
from cdp.identity.cluster import Edge, GuardedClusterer
from cdp.identity.match_rules import (
    RulePairs,
    all_rule_pairs,
    part_shared_contacts,
    rule_partners,
)
from cdp.identity.model import train_model
from cdp.identity.outputs import (
    LINK_SCHEMA,
    EdgeSet,
    clusters_table,
    cookie_table,
    edge_table,
    link_table,
    previous_part,
    previous_state,
    settle_history,
    write_outputs,
)
from cdp.identity.prepare import build_records, connect_inputs
from cdp.identity.scoring import ScoredPairs, score_pairs, splink_db, splink_input
from cdp.identity.settings import IdentitySettings
from cdp.identity.stable_ids import assign_ids, id_stem
from cdp.io import lake
from cdp.io.atomic import write_parquet
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
    mode: str = "full"  # full | incremental | unchanged (cdp.identity.incremental)
    mode_reason: str = ""
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
    full: bool = False,
) -> ResolveResult:
    """`full`: resolve every record again, whatever changed (`cdp run --full-refresh`)."""
    try:
        return _resolve(ws, run_id, settings, progress, full)
    finally:
        # Splink's working tables hold every email and phone: never leave them behind.
        shutil.rmtree(ws.tmp_dir / "splink", ignore_errors=True)


@dataclass
class _Core:
    """One resolution of a set of records (all of them, or the part to redo)."""

    records: pa.Table
    uids: pa.Array
    groups: list[list[str]]
    cluster_no: np.ndarray
    pairs: ScoredPairs
    joined: EdgeSet
    near: EdgeSet


def _resolve(
    ws: Workspace,
    run_id: str,
    settings: IdentitySettings | None,
    progress: Progress | None,
    full: bool = False,
) -> ResolveResult:
    started = time.perf_counter()
    settle_history(ws)  # a run killed mid-output leaves its events aside
    incremental.discard_staged(ws)  # and, before, the state it was about to commit
    settings = _settings(ws, settings)
    result = ResolveResult()
    step = _stepper(progress)
    con = connect_inputs(ws)
    records, hashes = incremental.split_hashes(build_records(con))
    result.records = records.num_rows
    # The settings as written: an incremental run fixes the household prior to the learnt
    # share below, and saving that would make the next run see changed settings.
    written = settings
    plan = (
        incremental.Plan("full", "a full refresh")
        if full
        else incremental.plan(
            ws, records, hashes, incremental.settings_fingerprint(ws, written), settings
        )
    )
    result.mode, result.mode_reason = plan.mode, plan.reason
    share = None
    caps = plan.caps  # each blocking rule's cap, under which the kept pairs were formed
    totals = plan.totals  # each rule's pairs within identity.max_block_records
    # The state for the next run (the pairs, values and hashes) is staged on the other
    # core while the outputs are written, and made current after the links.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        if plan.mode == "unchanged":
            staged = pool.submit(incremental.stage_state, ws, hashes, None)
            step("cookies")
            links = _links_with_cookies(ws, con, run_id, _previous_people(ws))
            write_outputs(ws, run_id, links, None, None, None, [])
            share = plan.household_share
        elif plan.mode == "incremental":
            share = plan.household_share
            if settings.household_prior == "auto" and share is not None:
                settings = settings.model_copy(update={"household_prior": share})
            tf = incremental.tf_tables(records, _tf_columns(settings))
            earlier = pair_store.read(ws)
            if plan.fresh is None:  # every pair of the part is scored again
                subset, reuse, shared = plan.subset, None, None
            else:
                subset, scored, shared = _linked_part(ws, records, plan, settings, tf, step)
                reuse = (earlier, np.searchsorted(subset, plan.fresh), scored)
            core = _core(
                ws,
                _reindexed(records.take(pa.array(subset))),
                settings,
                result,
                step,
                tf=tf,
                share=share,
                whole=(records, subset),
                earlier=reuse,
                shared=shared,
                caps=caps,
            )
            staged = pool.submit(_stage_increment, ws, hashes, records, earlier, plan, core)
            links = _write_partial(ws, con, run_id, core, result, plan)
        else:
            core = _core(ws, records, settings, result, step)
            share = result.household_share
            staged = pool.submit(_stage_full, ws, hashes, records, core)
            links = _write_full(ws, con, run_id, core, result)
            caps = core.pairs.blocking.caps
            totals = incremental.pair_totals(records, settings)
        result.household_share = share if share is not None else result.household_share
        _summarise(result, links)
        files = staged.result()
    except BaseException:
        pool.shutdown(wait=True)  # what the staging thread wrote, then removed
        incremental.discard_staged(ws)
        raise
    pool.shutdown()
    # After the outputs: a full run may have trained the model the fingerprint covers.
    fingerprint = incremental.settings_fingerprint(ws, written)
    failpoints.reached("identity.state")  # outputs written, the next run's state staged
    incremental.commit_state(ws, files, fingerprint, share, caps, totals)
    result.seconds = time.perf_counter() - started
    step("done")
    return result


def _stage_increment(ws, hashes, records, earlier: pa.Table, plan, core: _Core):
    """An increment's state: every pair scored, the earlier ones that stand and the
    part's; the values of the records it changed."""
    kept = pa.concat_tables(
        [
            pair_store.carried(earlier, plan.removed_ids, core.uids, plan.changed_ids),
            pair_store.pairs_table(core.pairs, core.uids),
        ],
        promote_options="permissive",
    )
    return incremental.stage_state(ws, hashes, kept, (records, plan.changed_ids))


def _stage_full(ws, hashes, records, core: _Core):
    return incremental.stage_state(
        ws, hashes, pair_store.pairs_table(core.pairs, core.uids), (records, None)
    )


def _linked_part(
    ws, records, plan, settings, tf, step
) -> tuple[np.ndarray, ScoredPairs, dict[str, set[str]]]:
    """The records an increment clusters again, the pairs scored for them, and the
    contacts shared by different people among the values the plan's part holds.

    Splink scores the pairs with a fresh record within the plan's part: every record
    sharing a blocking key with a new one (all the other James Smiths). Most of those
    pairs fall below the near-miss threshold and are dropped. Clustered again are only the
    fresh records, those a kept pair or a match rule can link to them, and everyone in
    their clusters, and the records an earlier guard kept apart from any of those; every
    other record of the part keeps its cluster as it was."""
    step("matching")
    subset = plan.subset
    part = _reindexed(records.take(pa.array(subset)))
    shared = part_shared_contacts(records, settings, subset)
    flags = pair_store.flags_at(len(subset), np.searchsorted(subset, plan.fresh))
    new = score_pairs(
        ws, _without_shared(part, shared), settings, tf=tf, fresh=flags, caps=plan.caps
    )
    seeds = np.concatenate(
        [
            plan.fresh,
            subset[new.lo],
            subset[new.hi],
            rule_partners(records, settings, subset, plan.fresh),
        ]
    )
    linked = incremental.with_kept_apart(
        ws, records, plan.clusters, incremental.with_their_clusters(plan.clusters, seeds)
    )
    # (the part is closed over clusters, so every linked record is in it)
    return (
        linked,
        replace(
            new,
            n=len(linked),
            lo=np.searchsorted(linked, subset[new.lo]),
            hi=np.searchsorted(linked, subset[new.hi]),
        ),
        shared,
    )


def _part_of(found, subset: np.ndarray, total: int):
    """Rule pairs and strong identifiers found over all `total` records, kept for the
    part (`subset`: the part's records among all), renumbered as the part's."""
    rule_pairs, strong_map, shared = found
    position = {int(i): k for k, i in enumerate(subset.tolist())}
    inside = np.zeros(total, dtype=bool)
    inside[subset] = True
    remap = np.full(total, -1, dtype=np.int64)
    remap[subset] = np.arange(len(subset))
    for rp in rule_pairs:
        keep = inside[rp.lo] & inside[rp.hi]
        rp.lo, rp.hi = remap[rp.lo[keep]], remap[rp.hi[keep]]
    strong = {position[i]: v for i, v in strong_map.items() if i in position}
    return rule_pairs, strong, shared


def _tf_columns(settings: IdentitySettings) -> list[str]:
    return [c.column for c in settings.comparisons if c.term_frequency]


def _reindexed(records: pa.Table) -> pa.Table:
    """A part of the records, with `_i` their position in it (the core indexes by it)."""
    at = records.schema.get_field_index("_i")
    return records.set_column(at, "_i", pa.array(np.arange(records.num_rows, dtype=np.int64)))


def _core(
    ws,
    records,
    settings,
    result,
    step,
    tf=None,
    share=None,
    whole=None,
    earlier=None,
    shared=None,
    caps=None,
) -> _Core:
    """Match rules, Splink and guarded clustering over `records`. `whole`: (all the
    records, the indexes of `records` among them) when `records` is a part: how often a
    value is held, and by whom, is then counted over all of them, as a full run would.
    `earlier`: (the pairs an earlier run scored, the positions of the fresh records, the
    pairs with a fresh record scored already): the others are read back. `shared`: the
    contacts shared by different people, when found already for a part holding every
    value `records` hold (whether a value is shared does not depend on the part).
    `caps`: each blocking rule's cap over all the records, when `records` is a part."""
    n = records.num_rows
    uids = records.column("unique_id").combine_chunks()
    step("match rules")
    if whole is None:
        rule_pairs, strong_map, shared = all_rule_pairs(records, settings)
    else:
        rule_pairs, strong_map, shared = _part_of(
            all_rule_pairs(whole[0], settings, within=whole[1], shared=shared),
            whole[1],
            whole[0].num_rows,
        )
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
            # two reasons: a value held by too many records, or by people who disagree
            field = kind.removesuffix(" shared by different people")
            why = (
                "shared by different people"
                if field != kind
                else f"shared by more than {settings.max_identifier_records} records"
            )
            result.warnings.append(f"match rule {rp.rule}: ignored {count} {field} value(s) {why}")
    result.ignored_identifiers = sorted(ignored.items())

    if earlier is None:
        step("matching")
        pairs = score_pairs(ws, records, settings, tf=tf, caps=caps)
    else:
        stored, fresh, scored = earlier
        pairs = pair_store.with_earlier(scored, stored, uids, pair_store.flags_at(n, fresh))
    result.blocking_comparisons = pairs.blocking.comparisons
    result.blocking_left_out = pairs.blocking.left_out
    result.household_share = share if share is not None else pairs.household_share
    result.family_guards = _family_guards(settings, result.household_share)
    if not result.family_guards and settings.family_guards == "auto":
        result.warnings.append(
            f"{result.household_share:.0%} of the pairs that share a surname and a home are "
            "one person: the data shows no families, so unrelated first names and birth "
            "dates are not kept apart (identity.family_guards)"
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
    return _Core(
        records,
        uids,
        _groups(uids.to_pylist(), cluster_no),
        cluster_no,
        pairs,
        EdgeSet.of(joined_det) + EdgeSet.scored(pairs, joined_rows, "probabilistic"),
        _near_misses(pairs, strong, refused),
    )


def _write_full(ws, con, run_id, core: _Core, result) -> pa.Table:
    previous, prev_sizes, prev_order, prev_created = previous_state(ws)
    ids, events = assign_ids(core.groups, previous, prev_sizes, prev_order)
    record_ids = pa.array(ids, pa.string()).take(pa.array(core.cluster_no))
    people = link_table(core.records, record_ids, core.joined, run_id)
    links = _links_with_cookies(ws, con, run_id, people)
    result.paths = write_outputs(
        ws,
        run_id,
        links,
        clusters_table(ws, run_id, ids, core.groups, previous, prev_created),
        edge_table(core.joined, core.pairs, core.uids, record_ids, joined=True),
        edge_table(core.near, core.pairs, core.uids, record_ids, joined=False),
        events,
    )
    return links


def _write_partial(ws, con, run_id, core: _Core, result, plan) -> pa.Table:
    """Resolve the part again; every other cluster keeps its rows as they were."""
    stems = sorted({id_stem(min(members)) for members in core.groups})
    last = previous_part(ws, con, core.uids, stems, plan.people)
    plan.people = None  # (held no longer than needed)
    changed = plan.changed_ids
    redone, gone = set(core.uids.to_pylist()), last.gone
    touched_ids = set(last.ids.values())
    ids, events = assign_ids(
        core.groups, last.ids, last.sizes, last.order, reserved=last.taken - touched_ids
    )
    record_ids = pa.array(ids, pa.string()).take(pa.array(core.cluster_no))
    stale, stale_near = redone | gone, gone | set(changed.to_pylist())
    # The earlier clusters, edges and near misses that stand, with the part's, each
    # written as soon as it is made while the links are built (Arrow, DuckDB and the
    # Parquet writer let go of the GIL; at 1M they took 3 to 3.5 s made one after the
    # other, then 1 s written): all before the links, which commit the run.
    with ThreadPoolExecutor(max_workers=2) as pool:
        standing = [
            pool.submit(_standing_edges, ws, core, record_ids, stale),
            pool.submit(
                _standing_clusters_and_near,
                ws,
                run_id,
                core,
                record_ids,
                ids,
                last,
                touched_ids,
                stale_near,
            ),
        ]
        people = _previous_people(ws, stale)
        people = pa.concat_tables(
            [people, link_table(core.records, record_ids, core.joined, run_id)]
        )
        links = _links_with_cookies(ws, con, run_id, people)
        for done in standing:
            done.result()
    result.paths = write_outputs(ws, run_id, links, None, None, None, events)
    return links


def _standing_edges(ws, core: _Core, record_ids, stale) -> None:
    """The edges after an increment: the earlier ones of no `stale` record, and the
    part's."""
    path = ws.identity_dir / "identity_edges.parquet"
    edges = edge_table(core.joined, core.pairs, core.uids, record_ids, joined=True)
    write_parquet(
        path,
        pa.concat_tables([_kept_rows(path, "pair", stale), edges], promote_options="permissive"),
    )


def _standing_clusters_and_near(
    ws, run_id, core: _Core, record_ids, ids, last, touched_ids, stale_near
) -> None:
    """The clusters and near misses after an increment: the earlier rows that stand (no
    cluster the part touched, no near miss of a `stale_near` record), and the part's.
    `ids`: the part's cluster ids; `last`: the last resolution of its records;
    `touched_ids`: the clusters those records were in."""
    d = ws.identity_dir
    clusters = pq.read_table(d / "identity_clusters.parquet")
    clusters = clusters.filter(
        pc.invert(
            pc.is_in(clusters["unified_individual_id"], pa.array(sorted(touched_ids), pa.string()))
        )
    )
    redone = clusters_table(ws, run_id, ids, core.groups, last.ids, last.created)
    write_parquet(
        d / "identity_clusters.parquet",
        pa.concat_tables([clusters, redone]).sort_by("unified_individual_id"),
    )
    near = edge_table(core.near, core.pairs, core.uids, record_ids, joined=False)
    path = d / "identity_near_misses.parquet"
    kept = _straddling(_kept_rows(path, "pair", stale_near), core.uids, record_ids)
    write_parquet(path, pa.concat_tables([kept, near], promote_options="permissive"))


def _straddling(near: pa.Table, uids: pa.Array, record_ids: pa.Array) -> pa.Table:
    """The earlier near misses that stand: those outside the redone part (`uids`, now in
    the clusters `record_ids`), and those from one of its records to a record outside,
    whose pair was not scored again, with the redone side's cluster as it is now.
    `near`: the earlier near misses but those of a new, edited or gone record."""
    at = {side: pc.index_in(near[f"unique_id_{side}"], value_set=uids) for side in ("l", "r")}
    inside = pc.and_(pc.is_valid(at["l"]), pc.is_valid(at["r"]))
    near = near.filter(pc.invert(inside))
    for side in ("l", "r"):
        pos = pc.index_in(near[f"unique_id_{side}"], value_set=uids)
        column = f"cluster_{side}"
        now = record_ids.take(pc.fill_null(pos, 0)) if len(record_ids) else near[column]
        near = near.set_column(
            near.schema.get_field_index(column),
            column,
            pc.if_else(pc.is_valid(pos), now, near[column]),
        )
    return near


def _previous_people(ws: Workspace, stale: set[str] = frozenset()) -> pa.Table:
    """The last run's person links, but those of the `stale` records (unique ids)."""
    return _kept_rows(ws.identity_dir / "unified_link_individual.parquet", "unique", stale).cast(
        LINK_SCHEMA
    )


def _kept_rows(path: Path, kind: str, uids: set[str]) -> pa.Table:
    """The rows of a previous output that do not touch `uids` (unique ids), in the file's
    order; of the link table (`kind` "unique"), only the person links. Filtered in
    DuckDB as the file is read, on both cores: at 1M, reading the links and filtering
    them in pyarrow took 2.0 s, this 0.4 s (the edges 1.4 s against 0.7 s)."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("_stale", pa.table({"unique_id": pa.array(sorted(uids), pa.string())}))
    if kind == "unique":
        where = (
            "record_kind = 'person' and source_name || ':' || source_record_id "
            "not in (select unique_id from _stale)"
        )
    else:
        where = " and ".join(
            f"unique_id_{side} not in (select unique_id from _stale)" for side in ("l", "r")
        )
    try:
        return con.sql(
            f"select * exclude (file_row_number) from {lake.scan(path, file_row_number='true')} "
            f"where {where} order by file_row_number"
        ).to_arrow_table()
    finally:
        con.close()


def _links_with_cookies(ws, con, run_id: str, people: pa.Table) -> pa.Table:
    """The person links and, for every logged-in cookie, the person it belongs to."""
    uids = pc.binary_join_element_wise(people["source_name"], people["source_record_id"], ":")
    cookies = cookie_table(con, uids, people["unified_individual_id"], run_id)
    return pa.concat_tables([people.cast(cookies.schema), cookies])


def _summarise(result: ResolveResult, links: pa.Table) -> None:
    # In DuckDB: filtering the links and counting their string ids in pyarrow took 1.5 s
    # of a core at a million people, against 0.4 s here.
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("links", links)
    sizes = con.execute(
        "select n, count(*) from (select count(*) as n from links "
        "where record_kind = 'person' group by unified_individual_id) group by n order by n"
    ).fetchall()
    people, links_in_all = con.execute(
        "select count(*) filter (where record_kind = 'person'), count(*) from links"
    ).fetchone()
    by_stage = con.execute(
        "select split_part(linked_by, ':', 1) as stage, count(*) from links "
        "where record_kind = 'person' group by stage order by stage"
    ).fetchall()
    con.close()
    result.anonymous_visitors = links_in_all - people
    result.clusters = sum(count for _, count in sizes)
    result.cluster_size_distribution = dict(sizes)
    result.largest_cluster = max((n for n, _ in sizes), default=0)
    total = max(people, 1)
    result.share_by_stage = {stage: count / total for stage, count in by_stage}


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
