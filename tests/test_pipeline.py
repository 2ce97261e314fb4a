"""The whole pipeline through Dagster on a small generated workspace."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest

from cdp.config.sources import load_sources
from cdp.workspace import resolve_workspace
from dagster_project.build import build_definitions
from dagster_project.run import run_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ran(demo_workspace):
    ws = resolve_workspace(demo_workspace)
    steps: list[tuple[str, str]] = []
    outcome = run_pipeline(ws, on_step=lambda step, state: steps.append((step, state)))
    assert outcome.success, (outcome.failed_steps, outcome.error)
    return ws, outcome, steps


def _count(path_glob) -> int:
    return duckdb.execute(f"select count(*) from read_parquet('{path_glob}')").fetchone()[0]


def test_every_source_lands_with_rows_accounted(ran):
    ws, outcome, _ = ran
    for spec in load_sources(ws.sources_dir):
        meta = outcome.materializations[f"raw/{spec.name}"]
        assert meta["rows_in"] > 0, spec.name
        assert meta["rows_in"] == meta["rows_kept"] + meta["rows_quarantined"]
        assert _count(f"{ws.raw_dir / spec.name}/*/*.parquet") == meta["rows_kept"]


def test_identity_covers_every_person_record(ran):
    ws, _, _ = ran
    individuals = _count(ws.harmonised_dir / "int_individuals_deduplicated.parquet")
    links = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    kinds = links["record_kind"].to_pylist()
    assert kinds.count("person") == individuals
    assert kinds.count("anonymous_visitor") > 0
    profiles = _count(ws.marts_dir / "unified_individual.parquet")
    # Duplicates across and within systems were merged, but not everything into one.
    assert 0 < profiles < individuals
    assert _count(ws.marts_dir / "customer_360.parquet") == profiles


def test_segment_and_consent_checked_export(ran):
    ws, outcome, _ = ran
    meta = outcome.materializations["activation/email_high_value"]
    export_dir = ws.exports_dir / "email_high_value" / outcome.run_id
    manifest = json.loads((export_dir / "manifest.json").read_text())
    rows = duckdb.execute(
        f"select count(*) from read_csv('{export_dir / 'email_high_value.csv'}', header=true)"
    ).fetchone()[0]
    assert rows == manifest["rows"] == meta["rows"]
    segment = _count(ws.marts_dir / "segment_membership.parquet")
    assert manifest["segment_size"] == segment
    assert (
        manifest["rows"] + manifest["excluded_no_consent"] + manifest["excluded_no_contact_point"]
        == segment
    )
    assert manifest["excluded_no_consent"] > 0  # consent is really checked


def test_rerun_with_no_new_files_loads_nothing_and_keeps_ids(ran):
    ws, _, _ = ran
    before = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    outcome = run_pipeline(ws)
    assert outcome.success, outcome.error
    for key, meta in outcome.materializations.items():
        if key.startswith("raw/"):
            assert meta["files_loaded"] == 0 and meta["rows_in"] == 0, key
    after = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    cols = ["source_name", "source_record_id", "unified_individual_id"]
    assert sorted(before.select(cols).to_pylist(), key=str) == sorted(
        after.select(cols).to_pylist(), key=str
    )


def test_catalog_is_readable_read_only(ran):
    from cdp.catalog import connect_catalog

    ws, _, _ = ran
    con = connect_catalog(ws)  # the views read paths relative to the workspace
    try:
        names = {
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        }
        assert {"customer_360", "unified_link_individual", "raw_crm_contacts"} <= names
        assert {"individual", "sales_order", "quarantine_crm_contacts"} <= names
        assert con.execute("select count(*) from customer_360").fetchall()[0][0] > 0
    finally:
        con.close()


def test_lineage_is_one_connected_graph(demo_workspace):
    ws = resolve_workspace(demo_workspace)
    graph = build_definitions(ws).resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(_key(key)).parent_keys}

    assert "raw/crm_contacts" in parents("stg_crm_contacts__individuals")
    # the mapping's failure counts come straight from the raw sources (ephemeral checks)
    assert "raw/crm_contacts" in parents("int_parse_failures")
    assert "int_person_records_prepared" in parents("unified_link_individual")
    assert "unified_link_individual" in parents("customer_360")
    assert "customer_360" in parents("segment_membership")
    assert "segment_membership" in parents("activation/email_high_value")
    assert "activation/email_high_value" in parents("catalog")
    # The UI's groups read as the data flow, one step after another.
    flow = {
        "raw/crm_contacts": "ingestion",
        "stg_crm_contacts__individuals": "harmonise",
        "int_individuals_deduplicated": "harmonise",
        "unified_link_individual": "identity",
        "customer_360": "insights",
        "segment_membership": "segments",
        "activation/email_high_value": "activation",
        "catalog": "catalog",
    }
    assert {k: graph.get(_key(k)).group_name for k in flow} == flow
    # dbt tests surface as asset checks on their models; ingestion and identity have theirs.
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw/crm_contacts", "quarantine_rate") in checks
    assert ("unified_link_individual", "largest_cluster") in checks
    assert any(
        a == "int_contact_point_emails_deduplicated" and n.startswith("unique_") for a, n in checks
    )


def _key(user_string: str):
    import dagster as dg

    return dg.AssetKey(user_string.split("/"))


def test_profile_and_sql_on_the_result(ran):
    from typer.testing import CliRunner

    from cdp.cli.main import app

    ws, _, _ = ran
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "sql",
            "select unified_individual_id, email_address from customer_360 "
            "where email_address is not null order by 1 limit 1",
            "--format",
            "json",
            "--workspace",
            str(ws.root),
        ],
    )
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    shown = runner.invoke(
        app, ["profile", row["email_address"], "--workspace", str(ws.root)], terminal_width=200
    )
    assert shown.exit_code == 0, shown.output
    assert row["unified_individual_id"] in shown.output
    by_id = runner.invoke(
        app, ["profile", row["unified_individual_id"], "--workspace", str(ws.root)]
    )
    assert by_id.exit_code == 0 and "source records" in by_id.output


def test_analyst_notebook_runs_on_the_result(ran):
    import os
    import subprocess
    import sys
    from pathlib import Path

    ws, _, _ = ran
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "explore_lake.py"
    out = subprocess.run(
        [sys.executable, str(notebook)],
        env={**os.environ, "CDP_WORKSPACE": str(ws.root)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "record_count" in out.stdout and "segment_name" in out.stdout


def test_a_workspace_with_one_person_source_runs_end_to_end(tmp_path):
    """No orders, no web events, no consent: every stage still runs."""
    from typer.testing import CliRunner

    from cdp.cli.main import app
    from tests.ingest.conftest import CSV_SOURCE, HEADER

    root = tmp_path / "solo"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    ws = resolve_workspace(root)
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    (ws.landing_dir / "people").mkdir(parents=True)
    (ws.landing_dir / "people" / "a.csv").write_text(
        HEADER
        + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "2,Ann,Lee,ann@x.com,41,1985-02-03,2024-02-01 10:00:00\n"
        + "3,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
    )
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)
    assert _count(ws.marts_dir / "customer_360.parquet") == 2
    assert outcome.materializations["activation/email_high_value"]["rows"] == 0
