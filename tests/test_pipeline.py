"""The whole pipeline through Dagster on a small generated workspace (fixture `ran`, in
conftest.py: one run shared with the console, notebook and SQL tests)."""

from __future__ import annotations

import json
import re

import duckdb
import pyarrow.parquet as pq
import pytest

from cdp.config.sources import load_sources
from cdp.io import parts
from cdp.workspace import resolve_workspace
from dagster_project.build import build_definitions
from dagster_project.run import run_pipeline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(180),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


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
    segment = duckdb.execute(
        "select count(*) from read_parquet(?) where segment_name = 'high_value'",
        [str(ws.marts_dir / "segment_membership.parquet")],
    ).fetchone()[0]
    assert manifest["segment_size"] == segment
    assert (
        manifest["rows"] + manifest["excluded_no_consent"] + manifest["excluded_no_contact_point"]
        == segment
    )
    assert manifest["excluded_no_consent"] > 0  # consent is really checked


RUN_LOG = "int_unified_individuals_changed.parquet"


def _mart_digests(ws) -> dict[str, str]:
    import hashlib

    # the dbt marts; segment membership history grows with every run on purpose, and
    # int_unified_individuals_changed lists whom this run computed again (a full build:
    # everyone; a rerun with nothing new: no one)
    # (a mart kept in parts is a folder: its parts' bytes, in order)
    return {
        p.name: hashlib.sha256(
            b"".join(f.read_bytes() for f in (parts.part_files(p) if p.is_dir() else [p]))
        ).hexdigest()
        for p in sorted(ws.marts_dir.glob("*.parquet"))
        if not p.name.startswith("segment_") and p.name != RUN_LOG
    }


def test_rerun_with_no_new_files_loads_nothing_and_keeps_ids(ran):
    ws, _, _ = ran
    before = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    marts_before = _mart_digests(ws)
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
    # Every mart is rebuilt, to the same bytes: decimal amounts, ordered ties, a fixed row
    # order, and "now" is the latest event, not the clock (docs/insights.md).
    assert {"customer_360.parquet", "campaign_attribution.parquet"} <= set(marts_before)
    assert _mart_digests(ws) == marts_before


def test_dbt_unit_tests_pass_and_a_wrong_answer_fails(ran, tmp_path):
    """The insight formulas are dbt unit tests (hand-made rows, answers in the yml). They
    are left out of pipeline runs (dagster_project/assets/dbt.py), so they run here, in a
    copy of the dbt project with one more test whose answer is wrong: it must be the one
    failure. (dbt cannot compile a unit test kept outside the project directory.)"""
    import os
    import shutil
    import subprocess

    import yaml

    from cdp.harmonise.dbt_env import (
        DBT_PROJECT_DIR,
        dbt_env,
        dbt_executable,
        generated_dir,
        project_dir,
    )

    ws, _, _ = ran
    names = {
        t["name"]
        for path in (DBT_PROJECT_DIR / "models").rglob("*.yml")
        for t in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }
    assert len(names) >= 20
    project = tmp_path / "dbt_models"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(generated_dir(ws), project / "generated")  # as in the workspace's project
    (project / "models" / "marts" / "_wrong_answer.yml").write_text(
        """
version: 2
unit_tests:
  - name: test_a_wrong_answer_fails
    model: int_rfm_scores_aggregated_to_unified_individual
    given:
      - input: ref('int_sales_orders_aggregated_to_unified_individual')
        rows:
          - {unified_individual_id: A, days_since_last_order: 1, order_count: 1, lifetime_value: 1.00}
    expect:
      rows:
        - {unified_individual_id: A, r_score: 5}
"""
    )
    target = project / "target"
    proc = subprocess.run(
        [
            dbt_executable(),
            *("test", "--select", "test_type:unit"),
            *("--project-dir", str(project), "--profiles-dir", str(project)),
            *("--target-path", str(target)),
        ],
        env={**os.environ, **dbt_env(ws)},
        cwd=project_dir(ws),  # where the workspace's dbt database names its files from
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    assert status.pop("test_a_wrong_answer_fails") == "fail", proc.stdout[-3000:]
    assert status == dict.fromkeys(names, "pass")


def test_insights_on_the_demo_data(ran):
    """Invariants of the insight marts on the generated data (the formulas themselves are
    unit-tested on hand-made rows)."""
    ws, _, _ = ran
    con = duckdb.connect()
    marts = ws.marts_dir

    def one(sql: str):
        return con.execute(sql).fetchone()

    c360 = f"read_parquet('{marts}/customer_360.parquet')"
    _people, buyers, ltv, spend, rfm, churn = one(
        f"select count(*), count(*) filter (where order_count > 0), sum(lifetime_value), "
        f"sum(total_spend), count(rfm_segment), count(churn_risk) from {c360}"
    )
    assert buyers > 0 and ltv == spend and ltv > 0
    assert rfm == churn == buyers  # every customer with an order, and only those
    # Every attributed order of a campaign is in the per-order attribution, and revenue adds up.
    per_order = f"read_parquet('{marts}/int_sales_orders_attributed_to_campaigns.parquet')"
    campaigns = f"read_parquet('{marts}/campaign_attribution.parquet')"
    assert one(f"select sum(attributed_orders), sum(attributed_revenue) from {campaigns}") == one(
        f"select count(*), coalesce(sum(amount_reporting), 0) from {per_order} where campaign is not null"
    )
    # Rows that match nobody are kept and counted, never dropped.
    coverage = f"read_parquet('{marts}/attribution_coverage.parquet')"
    webs = _count(ws.harmonised_dir / "int_engagement_webs_deduplicated.parquet")
    assert (
        one(f"select sum(row_count) from {coverage} where object_name = 'engagement_web'")[0]
        == webs
    )
    assert one(f"select sum(row_count) from {coverage} where not is_matched")[0] > 0
    # customer_360's contact points are the best rows of unified_contact_point.
    best = f"read_parquet('{marts}/unified_contact_point.parquet')"
    assert one(
        f"select count(*) from {c360} c left join {best} b on b.unified_individual_id = "
        f"c.unified_individual_id and b.channel = 'email' and b.is_best "
        f"where c.email_address is distinct from b.contact_value"
    ) == (0,)


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
    from cdp.harmonise.dbt_env import prepare

    prepare(ws)
    graph = build_definitions(ws).resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(_key(key)).parent_keys}

    assert "raw/crm_contacts" in parents("stg_crm_contacts__individuals")
    # the mapping's failure counts come straight from the raw sources (ephemeral checks)
    assert "raw/crm_contacts" in parents("int_parse_failures")
    assert "int_person_records_prepared" in parents("unified_link_individual")
    assert "unified_link_individual" in parents("unified_individual")
    assert "unified_link_individual" in parents("int_sales_orders_attributed")
    assert {"unified_individual", "unified_contact_point", "int_churn_risks_scored"} <= parents(
        "customer_360"
    )
    assert "customer_360" in parents("segment__high_value")
    assert "segment__high_value" in parents("segment_membership")
    assert "segment__high_value" in parents("audience__email_high_value")
    assert "individual_consent" in parents("audience__email_high_value")
    assert "audience__email_high_value" in parents("activation/email_high_value")
    assert "activation/email_high_value" in parents("catalog")
    # The UI's groups read as the data flow, one step after another.
    flow = {
        "raw/crm_contacts": "ingestion",
        "stg_crm_contacts__individuals": "harmonise",
        "int_individuals_deduplicated": "harmonise",
        "unified_link_individual": "identity",
        "int_sales_orders_attributed": "insights",
        "customer_360": "insights",
        "campaign_attribution": "insights",
        "segment_membership": "segments",
        "audience__email_high_value": "activation",
        "activation/email_high_value": "activation",
        "catalog": "catalog",
    }
    assert {k: graph.get(_key(k)).group_name for k in flow} == flow
    # dbt tests surface as asset checks on their models; ingestion and identity have theirs.
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("raw/crm_contacts", "quarantine_rate") in checks
    assert ("unified_link_individual", "largest_cluster") in checks
    emails = "int_contact_point_emails_deduplicated"
    assert (emails, f"invariants_{emails}") in checks
    assert (emails, f"belongs_to_individual_{emails}_") in checks


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


EMAIL = re.compile(rb"[a-z0-9._%+'-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}", re.I)


def _landed_emails(ws) -> set[str]:
    found: set[str] = set()
    for path in ws.landing_dir.rglob("*"):
        if path.is_file():
            found |= {m.decode().lower() for m in EMAIL.findall(_text_of(path))}
    return found


def _text_of(path) -> bytes:
    """A file's bytes, with Parquet's values decoded (its pages are compressed)."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception:
            return data
        data += " ".join(str(v) for col in table.columns for v in col.to_pylist()).encode()
    return data


def _holders(root, values: set[str], skip=()) -> list[str]:
    """Every file under root whose bytes or values hold one of `values` (any case)."""
    wanted = [v.lower().encode() for v in values if v]
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not any(s in path.parts for s in skip):
            text = _text_of(path).lower()
            if any(v in text for v in wanted):
                hits.append(str(path.relative_to(root)))
    return hits


def test_no_demo_email_outside_the_lake_landing_and_exports(ran):
    """Logs, Dagster's storage, temporary files and dbt's working files hold no email."""
    ws, _, _ = ran
    emails = _landed_emails(ws)
    assert len(emails) > 100
    assert _holders(ws.state_dir, emails) == []
    assert not (ws.tmp_dir / "splink").exists()  # Splink's working tables are gone


def test_the_run_keeps_the_phone_numbers_it_read_for_the_next_run(ran):
    """dbt's process saves every number it read (cdp.harmonise.phone_cache), so the next
    run reads only new ones; forget deletes the file (test below)."""
    import pyarrow.parquet as pq

    from cdp.harmonise.phone_cache import cache_path

    ws, _, _ = ran
    kept = pq.read_table(cache_path(ws.root)).to_pydict()
    phones = duckdb.execute(
        f"select distinct phone_e164 from read_parquet('{ws.harmonised_dir}/"
        "int_contact_point_phones_deduplicated.parquet') where phone_e164 is not null"
    ).fetchall()
    assert len(phones) > 100
    assert {p for (p,) in phones} <= set(kept["e164"])


def test_forget_reaches_every_copy_and_an_old_extract_does_not_bring_them_back(ran, tmp_path):
    import shutil

    from cdp import run_plan
    from cdp.privacy.forget import forget, resolve

    ws = resolve_workspace(shutil.copytree(ran[0].root, tmp_path / "ws", symlinks=True))
    old_landing = shutil.copytree(ws.landing_dir, tmp_path / "old_landing")
    email = duckdb.execute(
        f"select email_address from read_parquet('{ws.marts_dir}/customer_360.parquet') "
        "where email_address is not null and record_count >= 2 order by 1 limit 1"
    ).fetchone()[0]
    person = resolve(ws, email)
    values = person.clear_values() | {r for _, r in person.records}
    values |= {p.lstrip("+")[-10:] for p in person.phones}
    assert person.unified_ids and len(person.records) >= 2
    assert _holders(ws.root, values)  # the person is there before
    run_plan.run_finished(ws, "before-erasure", True)
    assert not run_plan.plan_run(ws).full
    erasure = forget(ws, email)
    assert erasure.rows_removed > 0
    assert _holders(ws.root, values) == []
    # dbt's database is gone and landing files changed: the next `cdp run` does everything
    plan = run_plan.plan_run(ws)
    assert plan.full and f"erasure {erasure.erasure_id}" in plan.reason, plan
    # The old extracts land again, under new names, and the pipeline runs.
    for path in old_landing.rglob("*"):
        if path.is_file():
            rel = path.relative_to(old_landing)
            shutil.copyfile(path, ws.landing_dir / rel.parent / f"again_{rel.name}")
    outcome = run_pipeline(ws)
    assert outcome.success, outcome.error
    suppressed = sum(
        m.get("rows_suppressed", 0)
        for k, m in outcome.materializations.items()
        if k.startswith("raw/")
    )
    assert suppressed >= len(person.records)
    assert _holders(ws.root, values) == []


def test_customer_360_documents_every_column_segments_may_name(ran):
    """Segment filters are checked against the documented columns: they must be all."""
    from cdp.activate.filters import customer_360_columns

    ws, _, _ = ran
    actual = [
        r[0]
        for r in duckdb.execute(
            f"describe select * from read_parquet('{ws.marts_dir}/customer_360.parquet')"
        ).fetchall()
    ]
    assert sorted(customer_360_columns()) == sorted(actual)


def test_next_best_stops_rather_than_pick_wrongly_when_sums_outgrow_the_pick(ran):
    """The next best product is picked as one number whose digits hold the summed
    co-buyers, the summed lift and the product (docs/insights.md): a bigint while they
    fit one, else a decimal. The model as this run compiled it, over the run's own order
    lines and affinities: the same rows as the run wrote; with co-buyers scaled past a
    bigint's room, the decimal picks the same products; with co-buyers or lift too big
    for the decimal's digits, the query stops with the model's message instead of letting
    one part spill into the next."""
    ws, _, _ = ran
    name = "int_next_best_products_aggregated_to_unified_individual"
    sql = next(ws.dbt_target_dir.glob(f"compiled/**/{name}.sql")).read_text()
    con = duckdb.connect()
    con.execute("attach ':memory:' as dbt")
    con.execute(
        "create view dbt.main.int_order_lines_attributed as select * from "
        f"read_parquet('{ws.marts_dir / 'int_order_lines_attributed.parquet'}')"
    )
    affinities = ws.marts_dir / "int_product_affinities_computed.parquet"
    written = con.sql(f"select * from '{ws.marts_dir / name}.parquet'").fetchall()
    message = "next best products: more products, co-buyers or lift than the pick has digits"
    for columns, where, expected in (
        ("*", "", written),
        ("*", "where false", []),  # nobody bought two things: nothing to pick, no error
        # past a bigint (co-buyers x 10^12 with the lift and the products' room), within
        # the decimal: the same picks, every score scaled alike
        (
            "* replace (co_buyers * 1000000000000 as co_buyers)",
            "",
            [(*row[:3], row[3] * 10**12, row[4]) for row in written],
        ),
        ("* replace (co_buyers * 1000000000000000 as co_buyers)", "", message),
        ("* replace (lift * 1000000000 as lift)", "", message),
        # past a bigint of 0.0001 units too: the same message, not a failed cast
        ("* replace (cast(lift as decimal(38, 4)) * 1000000000000 as lift)", "", message),
    ):
        con.execute(
            "create or replace view dbt.main.int_product_affinities_computed as "
            f"select {columns} from read_parquet('{affinities}') {where}"
        )
        if isinstance(expected, list):
            assert con.sql(sql).fetchall() == expected
        else:
            with pytest.raises(duckdb.Error, match=expected):
                con.sql(sql).fetchall()


def test_identity_hashes_each_record_as_dbt_made_it(ran):
    # The demo's records have phones, emails and party identifiers: a column the macro
    # left out changes some hash.
    from tests.test_increments import _assert_identity_hashes_as_dbt_made_them

    ws, _, _ = ran
    _assert_identity_hashes_as_dbt_made_them(ws)
