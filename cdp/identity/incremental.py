"""Which records a run has to resolve again.

Each resolution leaves a hash of every person record (`identity_record_hashes`) and of
what scored them (the settings and the saved model). The next run compares:
- nothing changed: the clusters stand; only the cookies are linked again (new logins);
- a few records are new, changed or gone: only they, the records that share a blocking
  or match-rule key with them, and every record of the clusters those belong to are
  resolved again; every other cluster keeps its id and its evidence untouched;
- the settings or the model changed, or too much changed: everything.

The re-resolved part is closed: a pair Splink or a match rule could form between it and
the rest must share a key with a changed record (its value now or before an edit), or
have been kept apart by a guard from a record of the part, so it is inside. Term
frequencies come from all the records and the household share from the last full
resolution, so a pair scores as it would in a full run.

Inside the part, Splink scores only the pairs with a fresh record: a new or edited one,
or one holding an email or phone a changed record gained or lost (whether a household
shares a contact decides if it counts as evidence), a rule key an edited or removed
record lost (it may be back under the frequency guard), or the cluster of a removed
record. The old values come from cdp.identity.record_values. Only the fresh records,
those a scored pair (at or above the near-miss threshold) or a match rule links to them,
and the clusters of all these are then clustered again (cdp.identity.resolve
`_linked_part`), with the records an earlier guard kept apart from any of them (the
record that kept them apart may have left). Their other pairs were scored by an earlier
run and are read back from `identity_scored_pairs` (every pair at or above the near-miss
threshold, with its match weights). They keep the term frequencies of the run that
scored them, so the whole part is scored again when changed records are over
`REUSE_MAX_SHARE` of all; and when a blocking value of a changed record crossed
identity.max_block_records, since the pairs of a block over it are left out of its rule
(changed_blocks). `cdp run --full-refresh` scores everything again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.identity import blocking, pair_store, record_values
from cdp.identity.match_rules import old_value_holders
from cdp.identity.settings import IdentitySettings
from cdp.io.atomic import stage_parquet, staged_path, write_text
from cdp.workspace import Workspace

STATE = "identity_state.json"
HASHES = "identity_record_hashes.parquet"
# Up to this share of new records, the part's pairs between earlier records are read back
# instead of scored again. Their term frequencies drift with the share: on the census
# sample (19,297 people), 1% new records left 9 clusters unlike a full run's (6 when the
# part was scored whole), 10% left 16 (none when scored whole).
REUSE_MAX_SHARE = 0.05
# Columns whose change changes what a record says about who it is. The dbt macro
# person_record_hash (dbt_models/macros/record_hash.sql) hashes the same, in this order.
HASHED = (
    "first_name_key",
    "first_name_canon",
    "last_name_key",
    "birth_date",
    "email_key",
    "phone",
    "address_line1_key",
    "house_number",
    "postal_code",
    "city_key",
    "national_id",
    "emails",
    "phones",
    "identifiers",
)


@dataclass
class Plan:
    mode: str  # full | unchanged | incremental
    reason: str
    subset: np.ndarray | None = None  # record indexes to resolve again (incremental)
    # Record indexes whose pairs Splink scores again; None: every pair of the subset.
    fresh: np.ndarray | None = None
    household_share: float | None = None
    changed_ids: pa.Array | None = None  # the new or edited records' unique_ids
    removed: int = 0
    removed_ids: pa.Array | None = None  # the records gone since the last run
    clusters: np.ndarray | None = None  # each record's earlier cluster (earlier_clusters)
    # the last run's person links, unique_id -> unified_individual_id (earlier_people)
    people: pa.Table | None = None
    caps: list[int] | None = None  # each blocking rule's cap over all records (whole_caps)
    totals: list[int] | None = None  # each rule's pairs within its cap (blocking.pair_totals)


def settings_fingerprint(ws: Workspace, settings: IdentitySettings) -> str:
    h = hashlib.sha256(json.dumps(settings.model_dump(), sort_keys=True, default=str).encode())
    if ws.identity_model_file.exists():
        h.update(ws.identity_model_file.read_bytes())
    return h.hexdigest()


def split_hashes(records: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The records without their hash, and unique_id, row_hash of each (in the records'
    order: build_records sorts them by unique_id). dbt makes the hash as it makes a
    record's row (int_person_records_prepared.row_hash, macro person_record_hash), so an
    increment hashes only the records it computes again; records without one (written by
    hand, or harmonised by a version before the column) are hashed here (record_hashes,
    the same hash)."""
    if "row_hash" not in records.column_names:
        return records, record_hashes(records)
    return records.drop_columns(["row_hash"]), records.select(["unique_id", "row_hash"])


def record_hashes(records: pa.Table) -> pa.Table:
    """unique_id, row_hash: a hash of each record's matching columns (HASHED), as the
    dbt macro person_record_hash makes it."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records)
    cols = [c for c in HASHED if c in records.column_names]
    # Lists hash in sorted order: a list built in no particular order (the identifiers
    # were, until they were sorted in dbt) made 110,000 of 1.75 million unchanged records
    # look changed on each run, and identity redid their whole neighbourhood.
    expr = ", ".join(
        f"cast(list_sort({c}) as varchar)"
        if pa.types.is_list(records.schema.field(c).type)
        else f"cast({c} as varchar)"
        for c in cols
    )
    # (in the records' order: build_records sorts them by unique_id)
    return con.sql(
        f"select unique_id, cast(hash(concat_ws(chr(31), {expr})) >> 1 as bigint) as row_hash "
        "from records"
    ).to_arrow_table()


def pair_totals(records: pa.Table, settings: IdentitySettings) -> list[int]:
    """blocking.pair_totals over all the records, as an increment keeps them up to date."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records)
    return blocking.pair_totals(con, "records", settings)


def read_state(ws: Workspace) -> dict:
    try:
        return json.loads((ws.identity_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stage_state(
    ws: Workspace,
    hashes: pa.Table,
    pairs: pa.Table | None,
    values: tuple[pa.Table, pa.Array | None] | None = None,
) -> list[tuple[Path, Path]]:
    """The bulk of a run's state, written while its outputs are (at 1M, about 1.4 s that
    ran after them with a core idle): `values` (the records, and the ids of those new or
    edited, or None for all of them), whose matching values are kept
    (cdp.identity.record_values: harmless before the hashes that point to them), then
    `pairs`, every pair scored (None: the file stands), and the record hashes, under
    temporary names. Returns (staged, target) for `commit_state`, which must come after
    the links: a run killed before it leaves the last run's state, so the next run
    resolves the same records again."""
    if values is not None:
        records, changed = values
        columns = [c for c in HASHED if c in records.column_names]
        record_values.save(ws, records, hashes, columns, changed)
    staged = []
    for target, table in zip(_staged_targets(ws), (pairs, hashes), strict=True):
        if table is not None:
            staged.append((stage_parquet(target, table), target))
    return staged


def _staged_targets(ws: Workspace) -> tuple[Path, Path]:
    """The state files a run stages, in the order it commits them: pairs, then hashes."""
    return pair_store.path(ws), ws.identity_dir / HASHES


def commit_state(
    ws: Workspace,
    staged: list[tuple[Path, Path]],
    fingerprint: str,
    share: float | None,
    caps: list[int] | None = None,
    totals: list[int] | None = None,
) -> None:
    """Make the staged state current (the pairs, then the hashes), then the settings
    it was made under. `caps`: the cap each blocking rule had (the pairs read back were
    formed under it), and `totals` the pairs of each within identity.max_block_records
    (pair_totals)."""
    for path, target in staged:
        os.replace(path, target)
    write_text(
        ws.identity_dir / STATE,
        json.dumps(
            {"settings": fingerprint, "household_share": share, "caps": caps, "totals": totals},
            indent=1,
        )
        + "\n",
    )


def discard_staged(ws: Workspace) -> None:
    """Remove state a run staged and never committed (it failed, or was killed)."""
    for target in _staged_targets(ws):
        staged_path(target).unlink(missing_ok=True)


def plan(
    ws: Workspace,
    records: pa.Table,
    hashes: pa.Table,
    fingerprint: str,
    settings: IdentitySettings,
    max_share: float = 0.2,
) -> Plan:
    state = read_state(ws)
    links = ws.identity_dir / "unified_link_individual.parquet"
    old_hashes = ws.identity_dir / HASHES
    if not (state and links.exists() and old_hashes.exists()):
        return Plan("full", "no earlier resolution")
    if not pair_store.path(ws).exists():
        return Plan("full", "the earlier resolution kept no scored pairs (an older version)")
    if "caps" not in state or "totals" not in state:
        return Plan("full", "the earlier resolution kept no blocking caps (an older version)")
    if state.get("settings") != fingerprint:
        return Plan("full", "the identity settings or the model changed")
    if pq.read_schema(old_hashes).field("row_hash").type != pa.int64():
        return Plan(
            "full", "the earlier resolution hashed its records another way (an older version)"
        )
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("now", hashes)
    con.execute(f"create view before as select * from read_parquet('{old_hashes}')")
    # One pass over both runs' hashes finds the new, edited and removed records (three
    # joins of 1.78 million ids at 1M customers before).
    compared = con.execute(
        "select now.unique_id, before.unique_id from now full join before using (unique_id) "
        "where before.row_hash is distinct from now.row_hash order by all"
    ).fetchall()
    changed = [now_id for now_id, _ in compared if now_id is not None]
    removed = [before_id for now_id, before_id in compared if now_id is None]
    share, earlier_caps = state.get("household_share"), state.get("caps")
    if not changed and not removed:
        return Plan(
            "unchanged",
            "no person record changed",
            household_share=share,
            caps=earlier_caps,
            totals=state["totals"],
        )
    n = max(records.num_rows, 1)
    if (len(changed) + len(removed)) / n > max_share:
        return Plan("full", f"{len(changed) + len(removed):,} records changed")
    edited = [now_id for now_id, before_id in compared if None not in (now_id, before_id)]
    old = record_values.earlier(ws, con, edited + removed) if edited or removed else None
    if (edited or removed) and old is None:
        return Plan("full", "the values edited or removed records had were not kept")
    people = earlier_people(ws)
    clusters, gone_clusters = earlier_clusters(people, records, removed)
    subset, partners = _closure(con, records, clusters, gone_clusters, set(changed), settings, old)
    subset = with_kept_apart(ws, records, clusters, subset)
    # The pairs read back were formed under the earlier caps, and a part's own counts
    # cannot say where a full run caps a rule (it tightens one over the comparison
    # limit): the caps over all the records must be the earlier ones.
    blocks = changed_blocks(con, settings)
    cap = settings.max_block_records
    totals = [
        total + blocking.pairs_within(now, cap) - blocking.pairs_within(was, cap)
        for total, (now, was) in zip(state["totals"], blocks, strict=True)
    ]
    caps = blocking.whole_caps(con, "records", settings, totals)
    if isinstance(caps, str):
        return Plan("full", caps)
    if caps != earlier_caps:
        return Plan("full", "a blocking rule's cap on block sizes moved")
    # A block that crossed its cap changes which pairs a full run forms (changed_blocks).
    crossed = any(
        ((now > c) != (was > c)).any() for (now, was), c in zip(blocks, caps, strict=True)
    )
    changed_ids = pa.array(sorted(changed), pa.string())
    fresh = None
    if len(changed) / n <= REUSE_MAX_SHARE and not crossed:
        new = pc.is_in(records["unique_id"], value_set=changed_ids)
        fresh = np.union1d(np.flatnonzero(new.to_numpy(zero_copy_only=False)), partners)
    return Plan(
        "incremental",
        f"{len(changed):,} new or changed and {len(removed):,} removed record(s)",
        subset=subset,
        fresh=fresh,
        household_share=share,
        changed_ids=changed_ids,
        removed=len(removed),
        removed_ids=pa.array(sorted(removed), pa.string()),
        clusters=clusters,
        caps=caps,
        totals=totals,
        people=people,
    )


def _closure(
    con,
    records,
    clusters: np.ndarray,
    gone_clusters: np.ndarray,
    changed: set[str],
    settings,
    old: pa.Table | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the records to resolve again: the changed ones, those sharing a key
    with them, and every record of the clusters either belongs (or belonged) to; and the
    indexes of the records whose pairs are scored again besides the changed ones.

    `old`: the values the edited and removed records had before. Holding one of them
    counts like holding a changed record's value. Scored again are the records holding
    an email or phone a changed record gained or lost (whether a contact is shared by
    different people decides whether it is evidence), those holding a rule's key a
    record lost (the value may have fallen under the frequency guard), and the other
    records of a removed record's cluster (it may have been what held them together)."""
    con.register("records", records)
    con.register("changed", pa.table({"unique_id": pa.array(sorted(changed), pa.string())}))
    con.execute("create temp table c as select r.* from records r join changed using (unique_id)")
    if old is not None and old.num_rows:
        con.register("old", old)
        con.execute("insert into c by name select * from old")  # their `_i` is null
    keys = []
    for i, rule in enumerate(settings.blocking_rules):
        # the blocks of the changed records' values, kept for changed_blocks
        on = " and ".join(f"r.{col} = c.{col}" for col in rule)
        con.execute(
            f"create or replace temp table block_{i} as select {', '.join(rule)}, _i "
            f"from records r semi join c on {on}"
        )
        keys.append(f"select _i from block_{i}")
    # The emails and phones a changed record gained or lost (all of a new or removed
    # one's; also all of an edited one's whose first name changed, as that may change
    # whether the value is shared by different people), and who holds them.
    moved = " union all ".join(
        f"select unique_id, _i is null as was, '{column}' as kind, unnest({column}) as v, "
        f"first_name_key from c"
        for column in ("emails", "phones")
    )
    con.execute(
        f"""
        create temp table moved as
        select distinct kind, v from ({moved})
        group by unique_id, kind, v, first_name_key having count(distinct was) = 1
        """
    )
    contacts = [
        f"select r._i from (select _i, unnest({column}) as v from records) r "
        f"join (select v from moved where kind = '{column}') m using (v)"
        for column in ("emails", "phones")
    ]
    con.execute("create temp table contacts as " + " union ".join(contacts))
    held = old_value_holders(records, old, settings) if old is not None and old.num_rows else []
    con.register("held", pa.table({"_i": pa.array(held, pa.int64())}))
    # the other records of the clusters removed records belonged to
    orphans = np.flatnonzero(np.isin(clusters, gone_clusters))
    keys += ["select _i from contacts", "select _i from held"]
    keys.append(
        "select r._i from (select _i, unnest(identifiers) as v from records) r "
        "join (select unnest(identifiers) as v from c) c using (v)"
    )
    con.execute(
        "create temp table near as "
        + " union ".join(keys)
        + " union select _i from c where _i is not null"
    )
    near = np.asarray(con.execute("select _i from near").fetchnumpy()["_i"], dtype=np.int64)
    subset = with_their_clusters(clusters, np.union1d(near, orphans))
    partners = con.execute("select _i from contacts union select _i from held").fetchnumpy()["_i"]
    return subset, np.union1d(np.asarray(partners, dtype=np.int64), orphans)


def changed_blocks(con, settings: IdentitySettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per blocking rule, for each value a changed record holds now or held before an
    edit (the temp table `c` of _closure, with the blocks of those values `block_<rule>`):
    its block's size now and before the change. Every other block is as it was.

    A block that crossed its rule's cap (identity.max_block_records, or lower where a
    rule was tightened) changes which pairs a full run forms: one that fell within the
    cap holds pairs of unchanged records no run has scored, and one that grew over it
    holds pairs read back that a full run no longer forms, so the part is then scored
    whole."""
    blocks = []
    for i, rule in enumerate(settings.blocking_rules):
        cols = ", ".join(rule)
        not_null = " and ".join(f"{col} is not null" for col in rule)
        found = con.execute(
            f"""
            with v as (
                -- per value of a changed record: its records now, less the changed ones
                -- as they are now, plus as they were (`_i` is null for an old version)
                select {cols}, count(*) filter (where _i is null)
                    - count(*) filter (where _i is not null) as delta
                from c where {not_null} group by {cols}
            ),
            now as (select {cols}, count(*) as n from block_{i} group by {cols})
            select coalesce(now.n, 0) as n, coalesce(now.n, 0) + v.delta as was
            from v left join now using ({cols})
            """
        ).fetchnumpy()
        blocks.append(
            (np.asarray(found["n"], dtype=np.int64), np.asarray(found["was"], dtype=np.int64))
        )
    return blocks


def earlier_people(ws: Workspace) -> pa.Table:
    """The last run's person links as unique_id, unified_individual_id: read once for
    the plan (earlier_clusters) and the ids (outputs.previous_part), which each read the
    1.78 million links of 1M customers for 0.3 to 0.4 s."""
    links = ws.identity_dir / "unified_link_individual.parquet"
    con = duckdb.connect(config={"memory_limit": "1GB"})
    try:
        return con.sql(
            "select source_name || ':' || source_record_id as unique_id, unified_individual_id "
            f"from read_parquet('{links}') where record_kind = 'person'"
        ).to_arrow_table()
    finally:
        con.close()


def earlier_clusters(
    people: pa.Table, records: pa.Table, removed: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per record (by index), a number for its cluster in the earlier resolution (-1 for
    a record it did not have), and the numbers of the clusters the `removed` records
    belonged to. `people`: earlier_people."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("people", people)
    con.register("records", records.select(["unique_id", "_i"]))
    con.register("gone", pa.table({"unique_id": pa.array(sorted(removed), pa.string())}))
    found = con.execute(
        """
        -- any number per cluster will do, and numbering them unsorted saves a sort
        with numbered as (
            select unified_individual_id, row_number() over () as cluster
            from (select distinct unified_individual_id from people)
        )
        select records._i, numbered.cluster, gone.unique_id is not null as is_gone
        from people
        join numbered using (unified_individual_id)
        left join records using (unique_id)
        left join gone using (unique_id)
        where records._i is not null or gone.unique_id is not null
        """
    ).fetchnumpy()
    con.close()
    at = np.ma.filled(found["_i"], -1).astype(np.int64)  # -1: a removed record
    cluster = np.asarray(found["cluster"], dtype=np.int64)
    is_gone = np.asarray(found["is_gone"], dtype=bool)
    clusters = np.full(records.num_rows, -1, dtype=np.int64)
    clusters[at[~is_gone]] = cluster[~is_gone]
    return clusters, np.unique(cluster[is_gone])


def with_their_clusters(clusters: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`positions` (record indexes) and those of every other record of the clusters they
    belonged to in the earlier resolution (`clusters`: earlier_clusters), sorted."""
    inside = np.zeros(len(clusters), dtype=bool)
    inside[positions] = True
    # a flag per cluster number (number + 1: -1, no cluster, is flag 0, never set)
    flagged = np.zeros(int(clusters.max(initial=-1)) + 2, dtype=bool)
    flagged[clusters[positions] + 1] = True
    flagged[0] = False
    inside |= flagged[clusters + 1]
    return np.flatnonzero(inside)


def with_kept_apart(
    ws: Workspace, records: pa.Table, clusters: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """`positions` (closed over their clusters) and, until none is left, the records a
    guard of the earlier resolution kept apart from one of them, with their clusters. A
    strong pair kept apart because of a third record (a different birth date in one's
    cluster) may link once that record has left the cluster, by an edit or a removal."""
    path = ws.identity_dir / "identity_near_misses.parquet"
    if not path.exists():
        return positions
    # Both ends found by a join on the few kept-apart pairs: an index of all the records'
    # ids cost 0.7 s a call at 1M records (two calls a run).
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records.select(["unique_id", "_i"]))
    found = con.execute(
        f"""
        select l._i as left_i, r._i as right_i
        from read_parquet('{path}') as apart
        -- (a record removed since is in neither)
        join records as l on l.unique_id = apart.unique_id_l
        join records as r on r.unique_id = apart.unique_id_r
        where starts_with(apart.stage, 'kept apart')
        """
    ).fetchnumpy()
    con.close()
    left = np.asarray(found["left_i"], dtype=np.int64)
    right = np.asarray(found["right_i"], dtype=np.int64)
    if not left.size:
        return positions
    while True:
        inside = np.zeros(len(clusters), dtype=bool)
        inside[positions] = True
        more = np.union1d(right[inside[left] & ~inside[right]], left[inside[right] & ~inside[left]])
        if not more.size:
            return positions
        positions = with_their_clusters(clusters, np.concatenate([positions, more]))


def tf_tables(records: pa.Table, columns: list[str]) -> dict[str, pa.Table]:
    """Term frequencies over all the records, for Splink to score a part of them as it
    would score them all."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records)
    out = {}
    for c in columns:
        if c in records.column_names:
            out[c] = con.sql(
                f"select {c}, count(*) / sum(count(*)) over () as tf_{c} "
                f"from records where {c} is not null group by {c}"
            ).to_arrow_table()
    return out
