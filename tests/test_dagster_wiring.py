"""Dagster wiring on its own: the landing sensor, the quarantine check, dbt tests as checks."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

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


def _settled(env: Env) -> None:
    """Every landed file last written a minute ago: no copy is still in progress."""
    a_minute_ago = time.time() - 60
    for path in env.ws.landing_dir.rglob("*.*"):
        os.utime(path, (a_minute_ago, a_minute_ago))


def test_landing_sensor_requests_a_run_only_for_new_files(tmp_path):
    from cdp import run_plan
    from dagster_project.sensors import build_landing_sensor

    env = Env(tmp_path)
    specs = [env.spec(name) for name in ("people", "events", "orders")]
    raw = [build_ingestion_asset(spec) for spec in specs]

    @dg.asset(deps=[dg.AssetKey(["raw", "people"])])
    def people_downstream() -> None: ...

    job = dg.define_asset_job("all")
    sensor = build_landing_sensor(env.ws, specs, job)
    defs = dg.Definitions(
        assets=[*raw, people_downstream],
        jobs=[job],
        sensors=[sensor],
        resources={"cdp": CdpResource(workspace_dir=str(env.ws.root))},
    )

    def tick():
        return sensor(dg.build_sensor_context(definitions=defs))

    assert isinstance(tick(), dg.SkipReason)
    env.land("people", "a.csv", HEADER + "1,A,B,,,,\n")
    # A file written to a moment ago may still be arriving: the next tick takes it.
    skipped = tick()
    assert isinstance(skipped, dg.SkipReason) and "written to in the last" in skipped.skip_message
    _settled(env)
    # No run has finished yet: everything, as `cdp run` would.
    request = tick()
    assert isinstance(request, dg.RunRequest) and request.run_key
    assert request.asset_selection is None and request.tags["cdp/sources"] == "all"
    _ingest(env)
    run_plan.run_finished(env.ws, "r1", success=True)
    assert isinstance(tick(), dg.SkipReason)

    # After a run: a new file runs its source and what depends on it, nothing else.
    env.land("people", "b.csv", HEADER + "2,C,D,,,,\n")
    _settled(env)
    request = tick()
    assert request.asset_selection == [
        dg.AssetKey(["people_downstream"]),
        dg.AssetKey(["raw", "people"]),
    ]
    assert request.tags["cdp/sources"] == "people"
    env.land("events", "e.jsonl", '{"event_id": "e1", "cookie": "k1", "ts": "2026-01-01"}\n')
    _settled(env)
    assert tick().asset_selection == [
        dg.AssetKey(["people_downstream"]),
        dg.AssetKey(["raw", "events"]),
        dg.AssetKey(["raw", "people"]),
    ]

    # A file `cdp validate` finds wrong: nothing runs, and the tick says why, as cdp run would.
    env.land("people", "c.csv", "id,first,email,age,dob,updated\n3,E,,,,\n")  # no `last`
    _settled(env)
    skipped = tick()
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message.startswith("1 problem(s) found by `cdp validate`, nothing was run")
    assert "column 'last' is not in landing/people/c.csv" in skipped.skip_message


def test_nightly_schedule_is_off_unless_switched_on(monkeypatch, tmp_path):
    from cdp.workspace import Workspace
    from dagster_project.schedules import SCHEDULE_ON_ENV, build_nightly_schedule

    job = dg.define_asset_job("all")
    ws = Workspace(tmp_path)
    monkeypatch.delenv(SCHEDULE_ON_ENV, raising=False)
    assert build_nightly_schedule(ws, job).default_status == dg.DefaultScheduleStatus.STOPPED
    monkeypatch.setenv(SCHEDULE_ON_ENV, "1")  # what `make ui` sets
    assert build_nightly_schedule(ws, job).default_status == dg.DefaultScheduleStatus.RUNNING


def test_serve_gives_dagster_a_sigint_handler_even_when_started_in_the_background():
    """Dagster copies SIGINT's handler to SIGTERM; an ignored SIGINT made `make ui` unkillable."""
    import signal
    import subprocess
    import sys

    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"

    def run(*command: str) -> str:
        # As a background job of a non-interactive shell starts it: SIGINT ignored.
        return subprocess.run(
            command,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert run(sys.executable, "-c", probe) == "False"
    assert run(sys.executable, "-m", "dagster_project.serve", "python", "-c", probe) == "True"


@pytest.mark.slow
def test_loading_the_definitions_writes_nothing_and_sets_no_variable(demo_workspace):
    import hashlib
    import os

    from cdp.harmonise.dbt_env import prepare
    from cdp.workspace import resolve_workspace
    from dagster_project.build import build_definitions

    ws = resolve_workspace(demo_workspace)
    prepare(ws)

    def digest() -> str:
        h = hashlib.sha256()
        for p in sorted(ws.root.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    before, env = digest(), dict(os.environ)
    defs = build_definitions(ws)
    assert defs.resolve_job_def("cdp_pipeline") is not None
    assert digest() == before
    assert dict(os.environ) == env


def test_definitions_of_an_unprepared_workspace_say_what_to_do(tmp_path):
    import pytest

    from cdp.errors import CdpError
    from cdp.workspace import Workspace
    from dagster_project.build import build_definitions

    ws = Workspace(tmp_path)
    ws.sources_dir.mkdir()
    with pytest.raises(CdpError, match="run `cdp prepare`"):
        build_definitions(ws)


def test_the_event_log_remembers_tables_it_found_and_asks_again_for_missing_ones(tmp_path):
    import sqlite3

    from dagster_project.event_log import WorkspaceEventLogStorage

    storage = WorkspaceEventLogStorage(str(tmp_path))
    try:
        assert storage.has_table("asset_check_executions")  # made with the index
        assert storage.supports_asset_checks
        assert not storage.has_table("cdp_later")
        with sqlite3.connect(tmp_path / "index.db") as db:  # as a migration would
            db.execute("create table cdp_later (x integer)")
        assert storage.has_table("cdp_later")  # a table not found is looked for again
        # an asset check's result is stored and read back through the kept checks
        key = dg.AssetCheckKey(dg.AssetKey("people"), "rows")
        evaluation = dg.AssetCheckEvaluation(
            asset_key=key.asset_key, check_name="rows", passed=True
        )
        event = dg.DagsterEvent(
            event_type_value="ASSET_CHECK_EVALUATION",
            job_name="job",
            event_specific_data=evaluation,
        )
        storage.store_event(
            dg.EventLogEntry(
                error_info=None,
                level="INFO",
                user_message="",
                run_id="r1",
                timestamp=time.time(),
                dagster_event=event,
            )
        )
        assert storage.get_asset_check_execution_history(key, limit=5)
    finally:
        storage.dispose()
