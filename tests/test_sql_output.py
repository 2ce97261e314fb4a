"""`cdp sql` output: a table when it fits the terminal, vertical when it does not, and an
id is never cut, whatever the width."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cdp.catalog import rebuild_catalog
from cdp.cli.main import app
from cdp.cli.render import is_id_column
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

runner = CliRunner()
LONG_ID = "UI" + "0123456789ABCDEF" * 2  # 34 characters: wider than a folded column
NOTE = "a long free-text note that says a great deal about this customer " * 3


@pytest.fixture
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    ws = Workspace(root)
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table(
            {
                "unified_individual_id": [LONG_ID, "UI2"],
                "first_name": ["Ann", "Bo"],
                "last_name": ["Lee", "Li"],
                "email_address": ["ann.lee.with.a.long.address@example.com", None],
                "city": ["San Francisco", "Boston"],
                "postal_code": ["94110", "02118"],
                "lifetime_value": [1234.5, 0.0],
                "rfm_segment": ["champions", None],
                "note": [NOTE, "short"],
            }
        ),
    )
    rebuild_catalog(ws)
    return ws


def _sql(ws: Workspace, query: str, *extra: str, columns: int = 80) -> str:
    result = runner.invoke(
        app, ["sql", query, "--workspace", str(ws.root), *extra], env={"COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_id_columns():
    for name in ("unified_individual_id", "source_record_id", "id", "run_id", "unique_id_l"):
        assert is_id_column(name), name
    for name in ("identity", "valid", "paid_amount", "idle_days"):
        assert not is_id_column(name), name


def test_a_narrow_result_is_a_table(ws):
    out = _sql(ws, "select unified_individual_id, lifetime_value from customer_360 order by 1")
    assert "┃ unified_individual_id" in out and "-[ row" not in out
    assert f"│ {LONG_ID} │" in out  # whole, on one line
    assert "1234.5 │" in out  # numbers to the right
    assert out.strip().endswith("2 row(s)")


def test_a_long_value_folds_and_the_id_stays_whole(ws):
    out = _sql(ws, "select unified_individual_id, note from customer_360 order by 1")
    assert "┃ unified_individual_id" in out  # still a table: the note folds
    assert f"│ {LONG_ID} │" in out
    assert "…" not in out
    assert len(max(out.splitlines(), key=len)) <= 80
    assert out.count("customer") == 3  # every word kept, over several lines


def test_a_result_wider_than_the_terminal_turns_vertical(ws):
    out = _sql(ws, "select * from customer_360 order by 1")
    assert "┃" not in out
    lines = out.splitlines()
    assert lines[0].startswith("-[ row 1 ]")
    assert f"unified_individual_id | {LONG_ID}" in lines
    assert "email_address         | ann.lee.with.a.long.address@example.com" in lines
    assert "-[ row 2 ]" in out
    assert (
        "shown vertically: as a table it needs" in lines[-1] and "the terminal has 80" in lines[-1]
    )
    assert "…" not in out
    # The same query on a wide terminal is a table, with every id whole.
    wide = _sql(ws, "select * exclude (note) from customer_360 order by 1", columns=250)
    assert "┃ unified_individual_id" in wide and f"│ {LONG_ID} │" in wide


def test_every_format(ws):
    query = "select unified_individual_id, lifetime_value from customer_360 order by 1"
    vertical = _sql(ws, query, "--format", "vertical")
    assert f"unified_individual_id | {LONG_ID}" in vertical.splitlines()
    assert "lifetime_value        | 1234.5" in vertical.splitlines()
    assert vertical.strip().endswith("2 row(s)")  # asked for: no note
    rows = list(csv.reader(io.StringIO(_sql(ws, query, "--format", "csv"))))
    assert rows == [
        ["unified_individual_id", "lifetime_value"],
        [LONG_ID, "1234.5"],
        ["UI2", "0.0"],
    ]
    assert json.loads(_sql(ws, query, "--format", "json")) == [
        {"unified_individual_id": LONG_ID, "lifetime_value": 1234.5},
        {"unified_individual_id": "UI2", "lifetime_value": 0.0},
    ]
    limited = _sql(ws, query, "--format", "vertical", "--limit", "1")
    assert "-[ row 2 ]" not in limited and "more not shown" in limited
    bad = runner.invoke(app, ["sql", query, "--format", "xml", "--workspace", str(ws.root)])
    assert bad.exit_code == 1 and "table, vertical, csv, json" in bad.output
