"""One run at a time per workspace: a second run waits or fails; a dead holder's lock is free."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.config.sources import load_source
from cdp.errors import CdpError
from cdp.run_lock import current_holder, lock_path, run_lock
from cdp.workspace import Workspace
from dagster_project.resources import CdpResource
from tests.ingest.conftest import HEADER, Env

HOLD = """
import sys, time
from pathlib import Path
from cdp.run_lock import run_lock
from cdp.workspace import Workspace
with run_lock(Workspace(Path(sys.argv[1]))):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def holder(tmp_path):
    """Start a process that takes the lock of a workspace and sleeps; yields (ws, process)."""
    procs = []

    def start(seconds: float = 60) -> tuple[Workspace, subprocess.Popen]:
        ws = Workspace(tmp_path / "ws")
        ws.state_dir.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(ws.root), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return ws, p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_a_second_run_with_no_wait_fails_naming_the_holder(holder):
    ws, proc = holder()
    with pytest.raises(CdpError) as err, run_lock(ws, wait=False):
        pass
    message = str(err.value)
    assert f"another run (pid {proc.pid}, started " in message
    assert f"holds {lock_path(ws)}; try again later or use without --no-wait" in message
    result = CliRunner().invoke(app, ["run", "--no-wait", "--workspace", str(ws.root)])
    assert result.exit_code == 1 and f"another run (pid {proc.pid}" in result.output
    assert "Traceback" not in result.output
    # `cdp forget` never waits, and has no --no-wait to leave out
    result = CliRunner().invoke(
        app, ["forget", "ann@example.com", "--yes", "--workspace", str(ws.root)]
    )
    assert result.exit_code == 1 and "; try again once it has finished" in result.output


def test_a_second_run_waits_then_runs(holder):
    ws, proc = holder(seconds=1.5)
    seen = []
    started = time.monotonic()
    with run_lock(ws, on_wait=seen.append):
        assert time.monotonic() - started > 1  # we got in only once the holder let go
        assert json.loads(lock_path(ws).read_text())["pid"] == os.getpid()
    assert [h.pid for h in seen] == [proc.pid]
    assert seen[0].describe("started at").startswith(f"pid {proc.pid}, started at 20")


def test_a_lock_left_by_a_dead_process_is_taken_over(holder):
    ws, proc = holder()
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs: its pid stays in the file
    proc.wait()
    assert json.loads(lock_path(ws).read_text())["pid"] == proc.pid
    assert current_holder(ws) is None
    with run_lock(ws, wait=False):
        assert json.loads(lock_path(ws).read_text())["pid"] == os.getpid()


def test_sensor_and_schedule_skip_while_a_run_holds_the_workspace(tmp_path):
    from dagster_project.schedules import build_nightly_schedule
    from dagster_project.sensors import build_landing_sensor

    env = Env(tmp_path)
    env.land("people", "a.csv", HEADER + "1,A,B,,,,\n")
    a_minute_ago = time.time() - 60  # landed whole a while ago (sensors.SETTLE_SECONDS)
    os.utime(env.ws.landing_dir / "people" / "a.csv", (a_minute_ago, a_minute_ago))
    job = dg.define_asset_job("all")
    sensor = build_landing_sensor(env.ws, [load_source(env.ws.sources_dir / "people.yml")], job)
    schedule = build_nightly_schedule(env.ws, job)
    with run_lock(env.ws, wait=False):
        skipped = sensor(dg.build_sensor_context())
        assert isinstance(skipped, dg.SkipReason)
        assert skipped.skip_message == "a run is in progress"
        skipped = schedule(dg.build_schedule_context())
        assert isinstance(skipped, dg.SkipReason)
        assert skipped.skip_message == "a run is in progress"
    assert isinstance(sensor(dg.build_sensor_context()), dg.RunRequest)
    assert isinstance(schedule(dg.build_schedule_context()), dg.RunRequest)


def test_cdp_run_prints_one_waiting_line_then_runs(holder):
    ws, proc = holder(seconds=1.5)
    # A source with a mistake: once the lock is ours, the run stops quickly at validation.
    ws.sources_dir.mkdir(parents=True)
    (ws.sources_dir / "crm.yml").write_text("name: crm\n")
    result = CliRunner().invoke(app, ["run", "--workspace", str(ws.root)])
    lines = result.output.splitlines()
    assert lines[0].startswith(f"waiting for run (pid {proc.pid}, started at 20")
    assert lines[0].endswith("to finish")
    assert result.exit_code == 1 and "crm.yml" in result.output


@dg.asset
def lock_holder(cdp: CdpResource) -> int | None:
    """Who holds the workspace while this step runs."""
    holder = current_holder(cdp.workspace())
    return holder.pid if holder else None


def _materialize(ws: Workspace) -> dg.ExecuteInProcessResult:
    return dg.materialize([lock_holder], resources={"cdp": CdpResource(workspace_dir=str(ws.root))})


def test_a_dagster_run_holds_the_workspace_and_waits_for_its_holder(holder):
    """A run the UI, the sensor or the schedule starts takes the lock for its whole
    length: it waits for a `cdp run` in progress, and holds off the next one."""
    ws, _ = holder(seconds=1.5)
    started = time.monotonic()
    result = _materialize(ws)
    assert time.monotonic() - started > 1  # it started only once the holder let go
    assert result.success and result.output_for_node("lock_holder") == os.getpid()
    assert current_holder(ws) is None  # and let go when it ended


def test_a_dagster_run_inside_cdp_run_uses_its_hold(tmp_path):
    """`cdp run` takes the lock and runs Dagster in the same process: the run's
    resource must not wait for its own process."""
    ws = Workspace(tmp_path / "ws")
    ws.state_dir.mkdir(parents=True)
    with run_lock(ws, wait=False):
        result = _materialize(ws)
        assert result.success and result.output_for_node("lock_holder") == os.getpid()
        assert current_holder(ws).pid == os.getpid()  # still held: the block owns it
    assert current_holder(ws) is None


def test_a_dagster_run_that_fails_makes_the_next_cdp_run_do_everything(tmp_path):
    """The files a UI or sensor run loads are no longer new: if it fails, or is killed,
    `cdp run` must not conclude that nothing is left to do."""
    from cdp import run_plan

    ws = Workspace(tmp_path / "ws")
    ws.state_dir.mkdir(parents=True)
    run_plan.run_finished(ws, "r1", success=True)
    before = run_plan.read_state(ws)

    @dg.asset
    def under_way(cdp: CdpResource) -> str:
        # killed here, this is the state the run leaves behind
        return run_plan.read_state(cdp.workspace())["status"]

    @dg.asset
    def breaks(cdp: CdpResource) -> None:
        raise RuntimeError("a step that fails")

    resources = {"cdp": CdpResource(workspace_dir=str(ws.root))}
    result = dg.materialize([under_way], resources=resources)
    assert result.output_for_node("under_way") == "running"
    assert run_plan.read_state(ws) == before  # a run that went well leaves it as it was
    assert not run_plan.plan_run(ws).full

    result = dg.materialize([breaks], resources=resources, raise_on_error=False)
    assert not result.success
    plan = run_plan.plan_run(ws)
    assert plan.full and plan.reason == "the last run did not finish"
