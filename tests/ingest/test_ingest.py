"""Ingestion on real files: bad inputs, row conservation, incremental loads, kill and rerun."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.ingest import ingest as ingest_module
from cdp.ingest import ingest_source, pending_files, read_manifest
from tests.ingest.conftest import HEADER


def _raw(env, source):
    return (
        duckdb.connect()
        .sql(
            f"select * from read_parquet('{env.ws.raw_dir / source}/*/*.parquet', union_by_name=true) "
            "order by _load_id, _row_number"
        )
        .to_arrow_table()
        .to_pylist()
    )


def _quarantine(env, source):
    files = list((env.ws.quarantine_dir / source).glob("*/*.parquet"))
    if not files:
        return []
    return (
        pq.read_table(files).to_pylist()
        if len(files) == 1
        else duckdb.connect()
        .sql(f"select * from read_parquet('{env.ws.quarantine_dir / source}/*/*.parquet')")
        .to_arrow_table()
        .to_pylist()
    )


def _dq(env, source):
    path = env.ws.meta_dir / "dq" / f"{source}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def _conserved(result):
    assert result.rows_in == result.rows_kept + result.rows_quarantined
    for f in result.per_file:
        assert f.rows_in == f.rows_kept + f.rows_quarantined


def test_typed_raw_rows_carry_load_metadata(env):
    env.land("people", "a.csv", HEADER + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n")
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    (row,) = _raw(env, "people")
    assert row["age"] == 41 and str(row["dob"]) == "1985-02-03"
    assert row["_load_id"] == "000001" and row["_source_file"] == "landing/people/a.csv"
    assert row["_row_number"] == 1
    schema = pq.read_schema(next((env.ws.raw_dir / "people").glob("*/*.parquet")))
    assert schema.field("updated").type == pa.timestamp("us")


def test_unbalanced_quotes_are_quarantined_not_lost(env):
    env.land(
        "people",
        "a.csv",
        HEADER + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        '2,"Bob,Lee,bob@x.com,30,1990-01-01,2024-01-01 10:00:00\n'
        "3,Cy,Ng,cy@x.com,22,2001-01-01,2024-01-01 10:00:00\n",
    )
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    assert result.rows_kept >= 1 and result.rows_quarantined >= 1
    reasons = [q["_reason"] for q in _quarantine(env, "people")]
    assert any("unbalanced quotes" in r for r in reasons)


def test_wrong_delimiter_warns_and_quarantines_every_row(env):
    env.land(
        "people",
        "semi.csv",
        HEADER.replace(",", ";") + "1;Ann;Lee;a@x.com;41;1985-02-03;2024-01-01\n",
    )
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    assert result.rows_kept == 0 and result.rows_quarantined == 1
    assert any("';'-delimited" in w and "semi.csv" in w for w in result.warnings)
    assert _quarantine(env, "people")[0]["_reason"].startswith("no primary key")


def test_non_utf8_bytes_and_bom(env):
    data = (
        "\ufeff".encode()
        + HEADER.encode()
        + b"1,Ren\xe9e,Lee,r@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
    )
    env.land("people", "latin.csv", data)
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    (row,) = _raw(env, "people")
    assert row["id"] == "1"  # the BOM did not end up in the first column name
    assert "\ufffd" in row["first"]  # replaced, counted, not dropped
    assert any("not valid utf-8" in d["check"] for d in _dq(env, "people"))


def test_empty_and_header_only_files(env):
    env.land("people", "empty.csv", "")
    env.land("people", "header.csv", HEADER)
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_in == 0 and result.files_loaded == 2
    assert {r["status"] for r in read_manifest(env.ws, "people").to_pylist()} == {"empty"}
    # dbt can still read the source: an empty, typed file exists.
    assert (
        duckdb.connect()
        .execute(f"select count(*) from read_parquet('{env.ws.raw_dir / 'people'}/*/*.parquet')")
        .fetchone()[0]
        == 0
    )


def test_schema_drift_missing_and_extra_columns(env):
    env.land("people", "a.csv", HEADER + "1,Ann,Lee,a@x.com,41,1985-02-03,2024-01-01 10:00:00\n")
    ingest_source(env.ws, env.spec("people"))
    env.land(
        "people",
        "b.csv",
        "id,first,last,age,dob,updated,nickname\n2,Bo,Li,30,1990-01-01,2024-01-01,B\n",
    )
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    assert any("b.csv" in w and "missing from the data: email" in w for w in result.warnings)
    # An undeclared name is counted, not shown: in a headerless file it would be data.
    assert any(
        "new column(s) since the previous file: 1 undeclared column name(s)" in w
        for w in result.warnings
    )
    rows = _raw(env, "people")
    assert rows[1]["email"] is None and rows[1]["nickname"] == "B"


def test_wrong_types_and_odd_dates_become_null_and_are_counted(env):
    env.land(
        "people",
        "a.csv",
        HEADER
        + "1,Ann,Lee,a@x.com,forty,03/02/1985,2024-01-01 10:00:00\n"
        + "2,Bo,Li,b@x.com,30,2023-02-30,2024-01-01T10:00:00\n",
    )
    result = ingest_source(env.ws, env.spec("people"))
    _conserved(result)
    assert result.rows_kept == 2
    rows = _raw(env, "people")
    assert rows[0]["age"] is None and str(rows[0]["dob"]) == "1985-03-02"  # odd format understood
    assert rows[1]["dob"] is None  # an impossible date
    assert rows[1]["updated"] is not None  # ISO 'T' timestamps are read
    checks = {(d["field"], d["check"]): d for d in _dq(env, "people")}
    assert checks[("age", "not a valid integer")]["example_row_numbers"] == [1]
    assert checks[("dob", "not a valid date")]["failures"] == 1


def test_duplicate_keys_are_kept_and_counted(env):
    env.land("people", "a.csv", HEADER + "1,Ann,Lee,a@x.com,1,,\n1,Ann,Lee,a2@x.com,1,,\n")
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_kept == 2
    (dup,) = [d for d in _dq(env, "people") if d["check"] == "duplicate primary key in file"]
    assert dup["example_row_numbers"] == [2]


def test_huge_field_does_not_crash(env):
    big = "x" * 5_000_000
    env.land("people", "a.csv", HEADER + f'1,"{big}",Lee,a@x.com,1,,\n')
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_kept == 1
    assert len(_raw(env, "people")[0]["first"]) == 5_000_000


def test_broken_json_line_is_quarantined_with_its_line(env):
    env.land(
        "events",
        "e.jsonl",
        '{"event_id": "e1", "cookie": "k1", "ts": "2024-01-01 10:00:00"}\n'
        '{"event_id": "e2", "cookie": \n'
        "[1, 2]\n"
        '{"event_id": "e3", "cookie": "k3", "ts": "2024-01-01 10:00:00", "extra": {"a": 1}}\n',
    )
    result = ingest_source(env.ws, env.spec("events"))
    _conserved(result)
    assert (result.rows_kept, result.rows_quarantined) == (2, 2)
    q = sorted(_quarantine(env, "events"), key=lambda r: r["_row_number"])
    assert [r["_row_number"] for r in q] == [2, 3]
    assert "broken JSON" in q[0]["_reason"] and "expected a JSON object" in q[1]["_reason"]
    assert json.loads(_raw(env, "events")[1]["extra"]) == {"a": 1}


def test_truncated_parquet_fails_the_file_not_the_run(env):
    good = env.ws.landing_dir / "orders" / "a.parquet"
    pq.write_table(pa.table({"order_id": ["o1", "o2"], "total": [1.0, 2.0]}), good)
    data = good.read_bytes()
    env.land("orders", "b.parquet", data[: len(data) // 2])
    result = ingest_source(env.ws, env.spec("orders"))
    _conserved(result)
    assert (result.files_loaded, result.files_failed, result.rows_kept) == (1, 1, 2)
    (q,) = _quarantine(env, "orders")
    assert q["_source_file"].endswith("b.parquet") and "unreadable" in q["_reason"]


def _lake_digest(ws) -> dict:
    """Content of every data row in the lake, independent of file layout and timestamps."""
    out = {}
    for sub in ("raw", "quarantine"):
        for d in sorted((ws.lake_dir / sub).glob("*")):
            files = sorted(d.glob("*/*.parquet"))
            rows = sorted(
                json.dumps(r, default=str, sort_keys=True)
                for f in files
                for r in pq.read_table(f).to_pylist()
            )
            out[f"{sub}/{d.name}"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    manifest = read_manifest(ws, "people").drop_columns(["loaded_at", "mtime_ns"]).to_pylist()
    out["manifest"] = sorted(json.dumps(r, default=str, sort_keys=True) for r in manifest)
    return out


def _two_files(env):
    env.land("people", "a.csv", HEADER + "1,Ann,Lee,a@x.com,1,,\n,NoKey,X,,,,\n")
    env.land("people", "b.csv", HEADER + "2,Bo,Li,b@x.com,2,,\n")


def test_rerun_skips_loaded_files_and_changes_nothing(env):
    _two_files(env)
    first = ingest_source(env.ws, env.spec("people"))
    assert first.files_loaded == 2 and not pending_files(env.ws, env.spec("people"))
    before = {p: p.stat().st_mtime_ns for p in env.ws.lake_dir.rglob("*") if p.is_file()}
    again = ingest_source(env.ws, env.spec("people"))
    assert (again.files_loaded, again.files_skipped, again.rows_in) == (0, 2, 0)
    assert {p: p.stat().st_mtime_ns for p in env.ws.lake_dir.rglob("*") if p.is_file()} == before


def test_changed_file_is_a_new_version_and_full_refresh_rebuilds(env):
    _two_files(env)
    ingest_source(env.ws, env.spec("people"))
    env.land("people", "b.csv", HEADER + "2,Bo,Li,new@x.com,2,,\n")
    assert [p.name for p in pending_files(env.ws, env.spec("people"))] == ["b.csv"]
    changed = ingest_source(env.ws, env.spec("people"))
    assert changed.load_ids == ["000003"]
    assert [r["email"] for r in _raw(env, "people") if r["id"] == "2"] == ["b@x.com", "new@x.com"]
    refreshed = ingest_source(env.ws, env.spec("people"), full_refresh=True)
    assert refreshed.load_ids == ["000001", "000002"]
    assert [r["email"] for r in _raw(env, "people") if r["id"] == "2"] == ["new@x.com"]


def test_killed_run_then_rerun_equals_one_clean_run(env, tmp_path, monkeypatch):
    from tests.ingest.conftest import Env

    clean = Env(tmp_path / "clean")
    for e in (env, clean):
        _two_files(e)
    ingest_source(clean.ws, clean.spec("people"))

    calls = {"n": 0}
    real = ingest_module.record_load

    def killed_after_first_file(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt(
                "killed"
            )  # after b.csv's data was published, before its manifest
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "record_load", killed_after_first_file)
    with pytest.raises(KeyboardInterrupt):
        ingest_source(env.ws, env.spec("people"))
    monkeypatch.setattr(ingest_module, "record_load", real)
    ingest_source(env.ws, env.spec("people"))
    assert _lake_digest(env.ws) == _lake_digest(clean.ws)


def test_rows_are_conserved_per_file_in_the_lake(env):
    env.land("people", "a.csv", HEADER + "1,A,B,,,,\n,NoKey,B,,,,\n3,C,D,,,,\n")
    result = ingest_source(env.ws, env.spec("people"))
    kept = len(_raw(env, "people"))
    quarantined = len(_quarantine(env, "people"))
    assert (result.rows_in, kept, quarantined) == (3, 2, 1)
    (entry,) = read_manifest(env.ws, "people").to_pylist()
    assert entry["rows_in"] == entry["rows_kept"] + entry["rows_quarantined"] == 3
