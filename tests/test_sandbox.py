"""`cdp sql` and notebooks read the lake and nothing else: every attack is one clear line."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cdp.catalog import connect_catalog, rebuild_catalog
from cdp.cli.main import app
from cdp.errors import CdpError
from cdp.io.atomic import write_parquet
from cdp.sandbox import check_select
from cdp.workspace import Workspace

runner = CliRunner()


@pytest.fixture
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    ws = Workspace(root)
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table({"unified_individual_id": ["u1", "u2"], "total_spend": [10.0, -2.5]}),
    )
    rebuild_catalog(ws)
    return ws


def _sql(ws: Workspace, query: str, *extra: str):
    return runner.invoke(app, ["sql", query, "--workspace", str(ws.root), *extra])


def _refused(result, words: str) -> None:
    assert result.exit_code == 1, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_select_over_views_and_lake_files_still_works(ws):
    result = _sql(ws, "select count(*) as n from customer_360", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"n": 2}]
    lake_file = ws.marts_dir / "customer_360.parquet"
    result = _sql(
        ws,
        f"with t as (select * from read_parquet('{lake_file}')) select sum(total_spend) as s from t",
        "--format",
        "json",
    )
    assert result.exit_code == 0 and json.loads(result.output) == [{"s": 7.5}]
    assert _sql(ws, "explain select * from customer_360").exit_code == 0


def test_copy_over_a_mart_is_refused_and_the_file_keeps_its_rows(ws):
    target = ws.marts_dir / "customer_360.parquet"
    result = _sql(ws, f"copy (select * from customer_360 where false) to '{target}'")
    _refused(result, "cdp sql runs one SELECT statement; got COPY")
    assert duckdb.execute(f"select count(*) from read_parquet('{target}')").fetchall() == [(2,)]


def test_copy_into_the_configuration_is_refused(ws):
    target = ws.segments_dir / "x.yml"
    _refused(_sql(ws, f"copy (select 1) to '{target}'"), "got COPY")
    assert not target.exists()


def test_reading_a_file_outside_the_lake_is_refused(ws):
    result = _sql(ws, "select * from read_text('/etc/passwd')")
    _refused(result, "query refused")
    assert "root:" not in result.output


def test_attach_is_refused(ws, tmp_path):
    target = tmp_path / "x.duckdb"
    duckdb.connect(str(target)).close()  # a real database, so only the sandbox stops it
    _refused(_sql(ws, f"attach '{target}' as x"), "got ATTACH")


def test_several_statements_are_refused(ws):
    _refused(_sql(ws, "select 1; select 2"), "got 2 statements")


@pytest.mark.parametrize(
    ("query", "got"),
    [
        ("set enable_external_access = true", "got SET"),
        ("install httpfs", "got LOAD"),
        ("load json", "got LOAD"),
        ("pragma version", "got PRAGMA"),
        ("", "got 0 statements"),
        # EXPLAIN ANALYZE runs its statement, so it must wrap a SELECT too.
        ("/* hi */ explain analyze copy (select 1) to 'lake/x.csv'", "got EXPLAIN COPY"),
    ],
)
def test_everything_but_one_select_is_refused(ws, query, got):
    _refused(_sql(ws, query), got)


def test_the_sandbox_holds_on_the_connection_itself(ws, tmp_path):
    """Notebooks use connect_catalog directly, without check_select: the settings hold."""
    duckdb.connect(str(tmp_path / "x.duckdb")).close()
    (tmp_path / "secret.txt").write_text("secret")
    (ws.lake_dir / "link.txt").symlink_to(tmp_path / "secret.txt")  # a link leading out
    con = connect_catalog(ws)
    assert con.execute("select count(*) from customer_360").fetchall() == [(2,)]
    for attack in (
        "select * from read_text('/etc/passwd')",
        f"select * from read_text('{ws.lake_dir / 'link.txt'}')",
        f"copy (select 1) to '{tmp_path / 'out.csv'}'",
        f"attach '{tmp_path / 'x.duckdb'}' as x",
        "set enable_external_access = true",
        "set allowed_directories = ['/']",
    ):
        with pytest.raises(duckdb.Error):
            con.execute(attack)
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(CdpError, match="got CREATE"):
        check_select(con, "create table t as select 1")
