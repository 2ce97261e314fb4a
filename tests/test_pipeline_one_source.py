"""A workspace with one person source, end to end through Dagster (its own file, so
`make test` runs it on another worker than the shared demo run)."""

from __future__ import annotations

import duckdb
import pytest

from cdp.workspace import resolve_workspace
from dagster_project.run import run_pipeline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(90),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


def _count(path_glob) -> int:
    return duckdb.execute(f"select count(*) from read_parquet('{path_glob}')").fetchone()[0]


def test_a_workspace_with_one_person_source_runs_end_to_end(tmp_path):
    """No orders, no web events, no consent: every stage still runs; and a snapshot
    source deletes downstream the people its newest file no longer holds."""
    from typer.testing import CliRunner

    from cdp.cli.main import app
    from tests.ingest.conftest import CSV_SOURCE, HEADER

    root = tmp_path / "solo"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    ws = resolve_workspace(root)
    # A snapshot source: each file is the whole extract.
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE + "mode: snapshot\n")
    (ws.landing_dir / "people").mkdir(parents=True)
    rows = [
        "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n",
        "2,Ann,Lee,ann@x.com,41,1985-02-03,2024-02-01 10:00:00\n",
        "3,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n",
    ]
    (ws.landing_dir / "people" / "2024-01.csv").write_text(HEADER + "".join(rows))
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)
    assert _count(ws.marts_dir / "customer_360.parquet") == 2
    assert outcome.materializations["activation/email_high_value"]["rows"] == 0
    # Bo is deleted at the source: the next extract no longer holds him.
    (ws.landing_dir / "people" / "2024-02.csv").write_text(HEADER + "".join(rows[:2]))
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)
    names = duckdb.execute(
        f"select first_name from read_parquet('{ws.marts_dir}/customer_360.parquet')"
    ).fetchall()
    assert names == [("Ann",)]
