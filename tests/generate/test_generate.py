"""The demo generator: parseable, reproducible, noisy, with complete ground truth."""

from __future__ import annotations

import hashlib
import json

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from cdp.config.sources import load_sources
from cdp.generate import generate
from cdp.workspace import Workspace


def _hashes(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("gen"))
    summary = generate(ws, customers=1500, seed=11, chunk_people=600)
    return ws, summary


def test_sources_load_and_every_file_parses_with_summary_counts(generated):
    ws, summary = generated
    specs = {s.name: s for s in load_sources(ws.sources_dir)}
    assert len(specs) >= 6
    assert {"csv", "jsonl", "parquet"} <= {s.format for s in specs.values()}
    for name, spec in specs.items():
        files = sorted(ws.root.glob(spec.landing))
        assert files, name
        rows = 0
        for f in files:
            if spec.format == "csv":
                df = pl.read_csv(f, infer_schema=False)
            elif spec.format == "jsonl":
                df = pl.read_ndjson(f)
            else:
                df = pl.read_parquet(f)
            assert spec.referenced_columns() <= set(df.columns), (name, f)
            rows += df.height
        assert rows == summary.rows[name], name


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = (Workspace(tmp_path / n) for n in "abc")
    generate(a, customers=400, seed=3, chunk_people=150)
    generate(b, customers=400, seed=3, chunk_people=150)
    generate(c, customers=400, seed=4, chunk_people=150)
    assert _hashes(a.root) == _hashes(b.root)
    assert _hashes(a.root / "landing") != _hashes(c.root / "landing")


def test_regenerating_smaller_leaves_no_stale_chunk_files(tmp_path):
    ws = Workspace(tmp_path)
    generate(ws, customers=400, seed=3, chunk_people=100)
    generate(ws, customers=150, seed=3, chunk_people=100)
    assert len(list((ws.landing_dir / "crm_contacts").glob("*.csv"))) == 2


def test_ground_truth_covers_every_keyed_person_record_once(generated):
    ws, _ = generated
    truth = ws.ground_truth_dir / "records.parquet"
    con = duckdb.connect()
    dup = con.execute(
        f"select count(*) from (select source_name, source_record_id from read_parquet('{truth}') "
        "group by all having count(*) > 1)"
    ).fetchone()[0]
    assert dup == 0
    for source, key in (
        ("crm_contacts", "contact_id"),
        ("newsletter_subscribers", "subscriber_id"),
    ):
        keyed = pl.concat(
            [pl.read_csv(f, infer_schema=False) for f in (ws.landing_dir / source).glob("*.csv")]
        ).filter(pl.col(key).is_not_null() & (pl.col(key) != ""))
        in_truth = con.execute(
            f"select count(*) from read_parquet('{truth}') where source_name = '{source}'"
        ).fetchone()[0]
        assert in_truth == keyed.height
    accounts = pl.concat(
        [pl.read_ndjson(f) for f in (ws.landing_dir / "ecommerce_accounts").glob("*")]
    )
    assert (
        con.execute(
            f"select count(*) from read_parquet('{truth}') where source_name = 'ecommerce_accounts'"
        ).fetchone()[0]
        == accounts.filter(pl.col("account_id").is_not_null()).height
    )
    cookies = pq.read_table(ws.ground_truth_dir / "anonymous_ids.parquet").to_pylist()
    assert any(c["logged_in"] for c in cookies) and any(c["person_id"] is None for c in cookies)


def test_noise_is_really_there(generated):
    ws, _ = generated
    con = duckdb.connect()
    truth = ws.ground_truth_dir / "records.parquet"
    persons = ws.ground_truth_dir / "persons.parquet"
    # Duplicates inside one system.
    assert (
        con.execute(
            f"select count(*) from (select person_id from read_parquet('{truth}') "
            "group by person_id, source_name having count(*) > 1)"
        ).fetchone()[0]
        > 0
    )
    # Households: several people share one address and surname.
    assert (
        con.execute(
            f"select count(*) from (select household_id from read_parquet('{persons}') "
            "group by 1 having count(*) >= 2)"
        ).fetchone()[0]
        > 10
    )
    crm = pl.concat(
        [
            pl.read_csv(f, infer_schema=False)
            for f in (ws.landing_dir / "crm_contacts").glob("*.csv")
        ]
    )
    phones = [p for p in crm["phone"].to_list() if p]
    assert any(p.startswith("(") for p in phones) and any(p.startswith("+1 ") for p in phones)
    names = set(crm["first_name"].drop_nulls().to_list())
    assert names & {"Bob", "Bobby", "Rob", "Bill", "Liz", "Beth", "Jim", "Mike"}
    assert any(n.isupper() for n in names) and any(
        n != n.encode("ascii", "ignore").decode() for n in names
    )
    assert crm.filter(pl.col("street").str.contains(",")).height > 0  # quoted commas


def test_jsonl_rows_are_valid_json(generated):
    ws, _ = generated
    for f in (ws.landing_dir / "web_events").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            json.loads(line)


def test_append_adds_new_people_as_new_files_and_keeps_the_old_ones(tmp_path):
    """`cdp generate --append`: a day's new landing files, for the incremental bench."""
    ws = Workspace(tmp_path / "ws")
    generate(ws, customers=200, seed=3, chunk_people=100)
    before = {p: p.read_bytes() for p in ws.landing_dir.rglob("*.*")}
    summary = generate(ws, customers=50, seed=3, append=True)
    assert summary.customers == 50 and summary.rows["products"] == 0  # written once, first
    after = set(ws.landing_dir.rglob("*.*"))
    assert all(p.read_bytes() == data for p, data in before.items())  # untouched
    added = sorted(p.name for p in after - set(before))
    assert added and all("_00003." in name for name in added)
    people = duckdb.execute(
        f"select count(*), count(distinct person_id) from read_parquet('{ws.ground_truth_dir}/persons*.parquet')"
    ).fetchone()
    assert people == (250, 250)  # no person id reused
    records = duckdb.execute(
        f"select count(*), count(distinct (source_name, source_record_id)) "
        f"from read_parquet('{ws.ground_truth_dir}/records*.parquet')"
    ).fetchone()
    assert records[0] == records[1]  # no record id reused


def test_append_to_an_empty_workspace_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="run cdp generate first"):
        generate(Workspace(tmp_path / "ws"), customers=10, append=True)
