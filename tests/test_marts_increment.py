"""The per-person marts on an increment: only the people a run changed are computed
again, and the files equal a full build's, byte for byte (cdp/harmonise/marts_increment.py)."""

from __future__ import annotations

import json

import duckdb
import pytest

from cdp.harmonise import marts_increment
from cdp.workspace import resolve_workspace
from dagster_project.run import run_pipeline
from tests.ingest.conftest import CSV_SOURCE, HEADER

pytestmark = [pytest.mark.slow, pytest.mark.takes(100)]

KEPT = marts_increment.KEPT


def _rows(path, sql: str) -> list[tuple]:
    return duckdb.execute(sql.replace("{}", f"read_parquet('{path}')")).fetchall()


def _run(ws) -> None:
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)


def test_an_increment_recomputes_only_changed_people_and_equals_a_full_build(tmp_path):
    from typer.testing import CliRunner

    from cdp.cli.main import app

    root = tmp_path / "ws"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    ws = resolve_workspace(root)
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    (ws.landing_dir / "people").mkdir(parents=True)
    (ws.landing_dir / "people" / "1.csv").write_text(
        HEADER
        + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "2,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
        + "3,Cy,Wu,cy@x.com,50,1975-05-05,2024-01-01 10:00:00\n"
    )
    _run(ws)
    changed = ws.marts_dir / "int_unified_individuals_changed.parquet"
    assert _rows(changed, "select reason, count(*) from {} group by 1") == [("full", 3)]

    # Bo gets a new email (the same person: his cluster stays as it was) and Di arrives.
    (ws.landing_dir / "people" / "2.csv").write_text(
        HEADER
        + "2,Bo,Li,bo.li@y.com,30,1990-01-01,2024-03-01 10:00:00\n"
        + "4,Di,Ng,di@x.com,22,2002-02-02,2024-03-01 10:00:00\n"
    )
    _run(ws)
    people = dict(
        _rows(
            ws.marts_dir / "unified_individual.parquet",
            "select first_name, unified_individual_id from {}",
        )
    )
    reasons = dict(_rows(changed, "select unified_individual_id, reason from {}"))
    assert reasons == {people["Bo"]: "records", people["Di"]: "identity"}
    emails = _rows(
        ws.marts_dir / "unified_contact_point.parquet",
        f"select contact_value from {{}} where unified_individual_id = '{people['Bo']}' "
        "and is_best",
    )
    assert emails == [("bo.li@y.com",)]
    increment = {name: (ws.marts_dir / f"{name}.parquet").read_bytes() for name in KEPT}

    # The same lake built whole gives the same bytes.
    marts_increment.forget(ws)
    _run(ws)
    assert _rows(changed, "select distinct reason from {}") == [("full",)]
    for name in KEPT:
        assert (ws.marts_dir / f"{name}.parquet").read_bytes() == increment[name], name


def test_the_marts_are_built_whole_unless_the_last_build_can_be_trusted(tmp_path):
    """No record, another fingerprint, a retired load, a half-written file, a full
    refresh, an erasure or Spark: a full build. Otherwise the loads the last build did not see."""
    from cdp.run_plan import fingerprint, invalidate
    from cdp.workspace import Workspace

    ws = Workspace(tmp_path)
    ws.ensure_dirs()
    for load in ("000001", "000002"):
        (ws.raw_dir / "people" / f"load_id={load}").mkdir(parents=True)
    for name in KEPT:
        duckdb.execute(f"copy (select 1 as x) to '{ws.marts_dir / name}.parquet'")

    def decide(**kw):
        return marts_increment.increment(ws, engine="duckdb", full_refresh=False, **kw)

    assert decide()[0] is None  # no record of a build
    marts_increment.record(ws)
    seen = json.loads((ws.state_dir / marts_increment.STATE).read_text())
    assert seen["loads"] == {"people": ["000001", "000002"]}
    assert seen["fingerprint"] == fingerprint(ws)
    assert decide() == ({"new_loads": {}}, "increment")
    (ws.raw_dir / "people" / "load_id=000003").mkdir()
    assert decide()[0] == {"new_loads": {"people": ["000003"]}}
    assert marts_increment.increment(ws, engine="spark", full_refresh=False)[0] is None
    assert marts_increment.increment(ws, engine="duckdb", full_refresh=True)[0] is None

    half = ws.marts_dir / "unified_contact_point.parquet"
    whole = half.read_bytes()
    half.write_bytes(whole[: len(whole) // 2])
    assert "incomplete" in decide()[1]
    half.write_bytes(whole)

    (ws.raw_dir / "people" / "load_id=000001").rmdir()  # retention retired a load
    assert decide() == (None, "1 load(s) of people left the lake since the last build")
    (ws.raw_dir / "people" / "load_id=000001").mkdir()

    assert decide()[0] is not None
    invalidate(ws, "an erasure")  # what `cdp forget` calls: the lake was rewritten
    assert decide() == (None, "no earlier marts build to start from")

    marts_increment.record(ws)
    (ws.root / "cdp.yml").write_text("default_region: DE\n")
    assert "configuration or code changed" in decide()[1]


def test_a_build_of_some_per_person_marts_is_whole_and_leaves_the_next_full(tmp_path):
    """One asset materialised from the UI: what it builds is built whole; the record of
    the last build goes if any of the three models is rebuilt, and stays otherwise."""
    from cdp.workspace import Workspace

    ws = Workspace(tmp_path)
    ws.ensure_dirs()
    for name in KEPT:
        duckdb.execute(f"copy (select 1 as x) to '{ws.marts_dir / name}.parquet'")
    marts_increment.record(ws)

    def plan(selected):
        return marts_increment.plan_build(ws, selected, engine="duckdb", full_refresh=False)

    assert plan({"customer_360"}) == (
        None,
        "the per-person marts are not part of this build",
        "none",
    )
    assert plan({"unified_individual", "customer_360"})[0::2] == (None, "some")
    everything = set(marts_increment.MODELS) | {"customer_360"}
    assert plan(everything) == ({"new_loads": {}}, "increment", "all")
