"""The matching values each person record had when identity last resolved it
(`identity_record_values/`, a folder of Parquet parts).

An edit or a removal changes what a record's *old* values meant to other records: a
family mailbox the father no longer holds may now be his daughter's own and link her two
records; an identifier a record dropped may fall back under the frequency guard. The
hashes (cdp.identity.incremental) say only that a record changed, so its old values are
kept here, for the increment to find the records that hold them.

A full resolution writes every record as the first part. An increment adds a part with
the records it found new or edited (a few thousand rows, not the 1.8 million of a
million customers), and past MAX_PARTS the parts are merged into one holding each
record's current row. Every row carries the hash its values had, and a lookup takes the
row whose hash the last run's hashes hold: a run stopped after writing a part but before
its hashes still finds the values those hashes describe.

The values are personal data, like the links: `cdp forget` erases a person's rows here
(by unique_id) with the other identity outputs.
"""

from __future__ import annotations

import os
import shutil

import duckdb
import pyarrow as pa

from cdp.io.atomic import write_parquet
from cdp.io.parts import next_part, part_files, sql_string
from cdp.workspace import Workspace

FOLDER = "identity_record_values"
# More parts than this after an increment: merged into one.
MAX_PARTS = 8


def folder(ws: Workspace):
    return ws.identity_dir / FOLDER


def _with_hashes(records: pa.Table, hashes: pa.Table, columns: list[str]) -> pa.Table:
    """The records' `columns`, each row with its hash."""
    if records.num_rows == hashes.num_rows and records["unique_id"].equals(hashes["unique_id"]):
        # every record, in the hashes' order (both sorted by unique_id): no join
        return records.select(["unique_id", *columns]).add_column(1, "row_hash", hashes["row_hash"])
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records)
    con.register("hashes", hashes)
    listed = ", ".join(f"records.{c}" for c in columns)
    return con.sql(
        f"select unique_id, hashes.row_hash, {listed} from records "
        "join hashes using (unique_id) order by unique_id"
    ).to_arrow_table()


def save(
    ws: Workspace,
    records: pa.Table,
    hashes: pa.Table,
    columns: list[str],
    changed: pa.Array | None,
) -> None:
    """Every record's values (`changed` None: a full resolution), or a new part with
    the `changed` records' (an increment)."""
    target = folder(ws)
    if changed is None:
        staging = target.with_name(f".{FOLDER}.new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_parquet(staging / "part-00000.parquet", _with_hashes(records, hashes, columns))
        # killed between these two, the folder is missing: the next run with an edit or a
        # removal resolves everything (incremental.plan)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        return
    if not target.is_dir():
        return  # nothing to add to: the next edit or removal resolves everything
    ids = pa.table({"unique_id": changed})
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("ids", ids)
    con.register("records", records)
    part = con.sql("select records.* from records semi join ids using (unique_id)").to_arrow_table()
    write_parquet(next_part(target), _with_hashes(part, hashes, columns))
    if len(part_files(target)) > MAX_PARTS:
        _merge(target, hashes)


def _merge(target, hashes: pa.Table) -> None:
    """One part with each current record's row (its hash the one just saved); the rows of
    removed records and the older rows of edited ones go."""
    parts = part_files(target)
    listed = ", ".join(sql_string(p) for p in parts)
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("hashes", hashes)
    merged = con.sql(
        f"""
        select * from read_parquet([{listed}], union_by_name = true)
        semi join hashes using (unique_id, row_hash)
        qualify row_number() over (partition by unique_id) = 1
        order by unique_id
        """
    ).to_arrow_table()
    write_parquet(next_part(target), merged)
    # killed before these go, a row is there twice: a lookup takes one
    for p in parts:
        p.unlink()


def earlier(ws: Workspace, con: duckdb.DuckDBPyConnection, wanted: list[str]) -> pa.Table | None:
    """The values the records `wanted` had at the last resolution, one row each: the row
    whose hash is in `con`'s view `before` (that run's hashes). None when any is missing
    (no folder: written by an older version, or a full run stopped while saving it)."""
    parts = part_files(folder(ws))
    if not parts:
        return None
    listed = ", ".join(sql_string(p) for p in parts)
    con.register("wanted", pa.table({"unique_id": pa.array(wanted, pa.string())}))
    found = con.sql(
        f"""
        select v.* exclude (row_hash)
        from read_parquet([{listed}], union_by_name = true) as v
        join before using (unique_id, row_hash)
        semi join wanted using (unique_id)
        qualify row_number() over (partition by unique_id) = 1
        """
    ).to_arrow_table()
    return found if found.num_rows == len(set(wanted)) else None
