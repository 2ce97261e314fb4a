"""The pairs Splink scored, kept between runs (`identity_scored_pairs.parquet`).

An incremental run scores only the pairs with a fresh record and reads the part's other
pairs back from here (cdp.identity.incremental). The file holds record ids and match
weights, no personal values; `cdp forget` removes a person's rows with the other
identity outputs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.identity.scoring import ScoredPairs
from cdp.workspace import Workspace

PAIRS = "identity_scored_pairs.parquet"


def path(ws: Workspace):
    return ws.identity_dir / PAIRS


def read(ws: Workspace) -> pa.Table:
    return pq.read_table(path(ws))


def pairs_table(pairs: ScoredPairs, uids: pa.Array) -> pa.Table:
    """Every scored pair by record id, with its final probability and match weights, in
    the order of their records: Splink gives them in an order DuckDB's threads vary, and
    the same pairs must write the same file."""
    at = pairs.in_pair_order
    cols = {
        "unique_id_l": uids.take(pa.array(pairs.lo[at], pa.int64())),
        "unique_id_r": uids.take(pa.array(pairs.hi[at], pa.int64())),
        "match_probability": pa.array(pairs.p[at], pa.float64()),
        "household": pa.array(pairs.household[at], pa.bool_()),
        "match_weight": pa.array(pairs.weight[at], pa.float64()),
    }
    for name in pairs.names:
        cols[name] = pa.array(pairs.mw[name][at], pa.float64())
    return pa.table(cols)


def _positions(column: pa.ChunkedArray, uids: pa.Array) -> np.ndarray:
    """Each id's position among `uids`, or -1."""
    found = pc.fill_null(pc.index_in(column, value_set=uids), -1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)


def flags_at(n: int, at: np.ndarray) -> np.ndarray:
    """n flags, set at the positions `at`."""
    flags = np.zeros(n, dtype=bool)
    flags[at] = True
    return flags


def with_earlier(
    new: ScoredPairs, earlier: pa.Table, uids: pa.Array, is_fresh: np.ndarray
) -> ScoredPairs:
    """The pairs scored now among `uids` (each with a fresh record: `is_fresh`, a flag
    per record) and the earlier run's pairs between two records that are not fresh."""
    left = _positions(earlier["unique_id_l"], uids)
    right = _positions(earlier["unique_id_r"], uids)
    keep = (left >= 0) & (right >= 0)
    keep[keep] = ~is_fresh[left[keep]] & ~is_fresh[right[keep]]
    old = earlier.filter(pa.array(keep))
    left, right = left[keep], right[keep]

    def old_values(name: str) -> np.ndarray:
        if name not in old.column_names:
            return np.full(old.num_rows, np.nan)
        return old[name].to_numpy(zero_copy_only=False).astype(np.float64)

    names = sorted(set(new.mw) | {c for c in earlier.column_names if c.startswith("mw_")})
    mw = {
        m: np.concatenate([new.mw.get(m, np.full(len(new.p), np.nan)), old_values(m)])
        for m in names
    }
    household = pc.fill_null(old["household"], False).to_numpy(zero_copy_only=False)
    return ScoredPairs(
        new.n,
        np.concatenate([new.lo, np.minimum(left, right)]),
        np.concatenate([new.hi, np.maximum(left, right)]),
        np.concatenate([new.p, old_values("match_probability")]),
        np.concatenate([new.household, household.astype(bool)]),
        np.concatenate([new.weight, old_values("match_weight")]),
        mw,
        new.blocking,
        new.warnings,
        new.household_share,
    )


def carried(earlier: pa.Table, removed: pa.Array, part: pa.Array, changed: pa.Array) -> pa.Table:
    """The earlier pairs an incremental run keeps as they were: neither record removed
    since (every record of an earlier pair was a record of that run), new or edited,
    and not both in the part (the part's pairs are written anew). A pair of a part
    record with a record outside stays. The sets are the few records a run touched:
    testing each pair against all 1.8 million current records instead took 1.4 s."""

    def either(ids: pa.Array, both: bool = False) -> pa.Array:
        in_l = pc.is_in(earlier["unique_id_l"], value_set=ids)
        in_r = pc.is_in(earlier["unique_id_r"], value_set=ids)
        return pc.and_(in_l, in_r) if both else pc.or_(in_l, in_r)

    stale = pc.or_(pc.or_(either(changed), either(removed)), either(part, both=True))
    return earlier.filter(pc.invert(stale))
