"""The values each record had at the last resolution, kept as parts (real Parquet)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from cdp.identity import record_values
from cdp.identity.incremental import record_hashes
from cdp.io.atomic import write_parquet
from cdp.io.parts import part_files
from cdp.workspace import Workspace


def _records(emails: dict[str, str]) -> pa.Table:
    ids = sorted(emails)
    return pa.table(
        {
            "unique_id": pa.array(ids, pa.string()),
            "emails": pa.array([[emails[i]] for i in ids], pa.list_(pa.string())),
        }
    )


def _earlier(ws: Workspace, hashes: pa.Table, wanted: list[str]) -> dict | None:
    """What a run whose previous hashes are `hashes` finds for `wanted`."""
    path = ws.identity_dir / "before.parquet"
    write_parquet(path, hashes)
    con = duckdb.connect()
    con.execute(f"create view before as select * from read_parquet('{path}')")
    found = record_values.earlier(ws, con, wanted)
    return (
        None
        if found is None
        else dict(zip(found["unique_id"].to_pylist(), found["emails"].to_pylist(), strict=True))
    )


def test_an_increment_adds_a_part_and_a_lookup_finds_the_values_its_hashes_describe(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    first = _records({"a": "a@x.com", "b": "b@x.com", "c": "c@x.com"})
    h1 = record_hashes(first)
    record_values.save(ws, first, h1, ["emails"], None)
    second = _records({"a": "a@x.com", "b": "bee@x.com", "c": "c@x.com", "d": "d@x.com"})
    h2 = record_hashes(second)
    record_values.save(ws, second, h2, ["emails"], pa.array(["b", "d"]))
    parts = part_files(record_values.folder(ws))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert duckdb.connect().sql(f"select count(*) from '{parts[1]}'").fetchall() == [
        (2,)
    ]  # only b and d
    # The run after the second finds b's second email; a run that still had the first
    # hashes (the second stopped before writing them) finds the first.
    assert _earlier(ws, h2, ["b"]) == {"b": ["bee@x.com"]}
    assert _earlier(ws, h1, ["a", "b"]) == {"a": ["a@x.com"], "b": ["b@x.com"]}
    assert _earlier(ws, h1, ["d"]) is None  # not a record of that run: nothing to go on


def test_past_max_parts_the_parts_merge_into_each_records_current_row(tmp_path, monkeypatch):
    monkeypatch.setattr(record_values, "MAX_PARTS", 2)
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    emails = {"a": "a@x.com", "b": "b@x.com"}
    table = _records(emails)
    record_values.save(ws, table, record_hashes(table), ["emails"], None)
    for n in range(1, 4):
        emails["b"] = f"b{n}@x.com"
        emails.pop("a", None)  # a was removed: its row goes at the merge
        table = _records(emails)
        hashes = record_hashes(table)
        record_values.save(ws, table, hashes, ["emails"], pa.array(["b"]))
    parts = part_files(record_values.folder(ws))
    assert len(parts) <= 2
    rows = (
        duckdb.connect()
        .sql(f"select unique_id, emails from read_parquet({[str(p) for p in parts]}) order by 1")
        .fetchall()
    )
    assert ("b", ["b3@x.com"]) in rows and all(r[0] != "a" for r in rows)
    assert _earlier(ws, hashes, ["b"]) == {"b": ["b3@x.com"]}


def test_without_the_folder_an_increment_adds_nothing_and_a_lookup_finds_nothing(tmp_path):
    """A workspace resolved by an older version: the next edit resolves everything."""
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    table = _records({"a": "a@x.com"})
    hashes = record_hashes(table)
    record_values.save(ws, table, hashes, ["emails"], pa.array(["a"]))
    assert not record_values.folder(ws).exists()
    assert _earlier(ws, hashes, ["a"]) is None
