"""Dagster wiring on its own: the landing sensor, the quarantine check, dbt tests as checks."""

from __future__ import annotations

import dagster as dg

from cdp.config.sources import load_source
from dagster_project.assets.ingestion import build_ingestion_asset
from dagster_project.resources import CdpResource
from tests.ingest.conftest import HEADER, Env


def _ingest(env: Env, threshold_yaml: str = ""):
    if threshold_yaml:
        path = env.ws.sources_dir / "people.yml"
        path.write_text(path.read_text() + threshold_yaml)
    asset = build_ingestion_asset(load_source(env.ws.sources_dir / "people.yml"))
    return dg.materialize([asset], resources={"cdp": CdpResource(workspace_dir=str(env.ws.root))})


def test_quarantine_rate_check_passes_and_fails_on_its_threshold(tmp_path):
    env = Env(tmp_path / "ok")
    env.land("people", "a.csv", HEADER + "1,A,B,,,,\n2,C,D,,,,\n")
    result = _ingest(env)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    mats = result.asset_materializations_for_node("raw__people")
    assert mats[0].metadata["rows_in"].value == 2

    bad = Env(tmp_path / "bad")
    bad.land("people", "a.csv", HEADER + "1,A,B,,,,\n,NoKey,B,,,,\n")
    result = _ingest(bad, "quality: {max_quarantine_rate: 0.1}\n")
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["quarantine_rate"].value == 0.5


def test_landing_sensor_requests_a_run_only_for_new_files(tmp_path):
    from dagster_project.sensors import build_landing_sensor

    env = Env(tmp_path)
    spec = load_source(env.ws.sources_dir / "people.yml")
    job = dg.define_asset_job("all")
    sensor = build_landing_sensor(env.ws, [spec], job)
    assert isinstance(sensor(dg.build_sensor_context()), dg.SkipReason)
    env.land("people", "a.csv", HEADER + "1,A,B,,,,\n")
    request = sensor(dg.build_sensor_context())
    assert isinstance(request, dg.RunRequest) and request.run_key
    _ingest(env)
    assert isinstance(sensor(dg.build_sensor_context()), dg.SkipReason)
