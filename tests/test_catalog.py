"""The catalog: canonical objects by name, tables that always exist, and relative paths,
so a moved or copied workspace keeps working."""

from __future__ import annotations

import os
import shutil

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.catalog import connect_catalog, rebuild_catalog
from cdp.config.sources import load_sources
from cdp.ingest import ingest_source
from cdp.workspace import Workspace


def _workspace(root) -> Workspace:
    ws = Workspace(root)
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(
        "name: people\nlanding: landing/people/*.csv\nformat: csv\nprimary_key: id\n"
        "columns: {age: integer}\nobjects:\n  individual: {first_name: first}\n"
    )
    (ws.landing_dir / "people").mkdir()
    (ws.landing_dir / "people" / "p.csv").write_text("id,first,age\n1,Ann,41\n2,Bob,old\n")
    for spec in load_sources(ws.sources_dir):
        ingest_source(ws, spec)
    # what dbt would write: a harmonised object, and an empty model's all-null row
    pq.write_table(
        pa.table({"source_name": ["people", "people"], "source_record_id": ["1", "2"]}),
        ws.harmonised_dir / "int_individuals_deduplicated.parquet",
    )
    pq.write_table(
        pa.table({"source_name": pa.nulls(1, pa.string())}),
        ws.harmonised_dir / "int_sales_orders_deduplicated.parquet",
    )
    rebuild_catalog(ws)
    return ws


def _names(con) -> set[str]:
    return {
        r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
    }


def test_canonical_objects_by_name_and_tables_that_always_exist(tmp_path):
    ws = _workspace(tmp_path / "ws")
    con = connect_catalog(ws)
    names = _names(con)
    assert {"individual", "int_individuals_deduplicated", "sales_order"} <= names
    assert {"quarantine_people", "ingest_manifest", "ingest_data_quality"} <= names
    assert con.execute("select count(*) from individual").fetchall() == [(2,)]
    assert con.execute("select count(*) from sales_order").fetchall() == [(0,)]
    # nothing was quarantined: the view exists, typed and empty
    assert con.execute("select count(*) from quarantine_people").fetchall() == [(0,)]
    types = dict(
        con.execute("select column_name, column_type from (describe quarantine_people)").fetchall()
    )
    assert types["_row_number"] == "BIGINT" and types["_reason"] == "VARCHAR"
    # "old" is not an integer: counted per source and field
    assert con.execute(
        "select source_name, stage, field, failures from ingest_data_quality"
    ).fetchall() == [("people", "ingestion", "age", 1)]


def test_empty_workspace_has_typed_empty_quality_tables(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    rebuild_catalog(ws)
    con = connect_catalog(ws)
    assert con.execute("select count(*) from ingest_data_quality").fetchall() == [(0,)]
    assert con.execute("select count(*) from ingest_manifest").fetchall() == [(0,)]


def test_a_moved_workspace_keeps_working(tmp_path, monkeypatch):
    ws = _workspace(tmp_path / "ws")
    moved = Workspace(tmp_path / "elsewhere" / "copy")
    shutil.copytree(ws.root, moved.root)
    shutil.rmtree(ws.root)  # nothing left at the old place
    monkeypatch.chdir(tmp_path)
    con = connect_catalog(moved)
    assert con.execute("select count(*) from individual").fetchall() == [(2,)]
    assert con.execute("select count(*) from raw_people").fetchall() == [(2,)]
    # a plain DuckDB opened inside the workspace folder reads it too
    monkeypatch.chdir(moved.root)
    plain = duckdb.connect("catalog.duckdb", read_only=True)
    assert plain.execute("select count(*) from individual").fetchall() == [(2,)]


def test_the_sandbox_holds_with_relative_paths(tmp_path, monkeypatch):
    ws = _workspace(tmp_path / "ws")
    # another folder with its own lake/ as working directory reads nothing of it
    other = tmp_path / "other"
    (other / "lake" / "harmonised").mkdir(parents=True)
    monkeypatch.chdir(other)
    con = connect_catalog(ws)
    assert con.execute("select count(*) from individual").fetchall() == [(2,)]
    try:
        con.execute("select * from read_text('/etc/hostname')").fetchall()
        raise AssertionError("read outside the lake")
    except duckdb.PermissionException:
        pass
    assert os.getcwd() == str(other)


def test_two_sandboxed_connections_in_one_process(tmp_path):
    # Connections to one file share its settings: the second finds them locked already.
    ws = _workspace(tmp_path / "ws")
    first, second = connect_catalog(ws), connect_catalog(ws)
    assert first.execute("select count(*) from individual").fetchall() == [(2,)]
    assert second.execute("select count(*) from individual").fetchall() == [(2,)]
    try:
        second.execute("select * from read_text('/etc/hostname')").fetchall()
        raise AssertionError("read outside the lake")
    except duckdb.PermissionException:
        pass
