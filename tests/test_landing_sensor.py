"""The landing sensor under `dagster dev`, as `make ui` starts it: a CRM file written by
hand lands, the daemon's sensor starts a run of that source and what depends on it, all
its steps in one process, and `cdp profile` finds the new person."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from tests.dagster_server import start
from tests.in_process import cdp

pytestmark = [pytest.mark.slow, pytest.mark.takes(70)]

# the sensor looks when the daemon starts, then every 30 s; the run takes about 15 s
FOUND_SECONDS = 150
CRM_FILE = (
    "contact_id,salutation,first_name,last_name,dob,gender,email,phone,street,city,zip,"
    "state,country,loyalty_no,created_at,modified_at\n"
    "C99990001,Ms.,Zelda,Quorn,1971-04-12,F,zelda.quorn@example.org,+1 415 555 0199,"
    "12 Harbour Way,Oakland,94607,CA,US,L99990001,2026-06-30 09:00:00,2026-06-30 09:00:00\n"
)


def test_a_file_dropped_in_landing_reaches_the_profile_through_the_sensor(
    ran, tmp_path, monkeypatch
):
    # A copy of the shared demo run's workspace, prepared as `make ui` prepares it (which
    # points dbt's views at the copy: cdp.harmonise.dbt_env.repoint_views)
    root = Path(shutil.copytree(ran[0].root, tmp_path / "ws", symlinks=True))
    cdp("prepare", "--workspace", str(root))
    (root / "landing" / "crm_contacts" / "crm_contacts_zelda.csv").write_text(CRM_FILE)

    home = root / ".cdp" / "dagster_home"
    command = [sys.executable, "-m", "dagster_project.serve", "dagster", "dev"]
    log = tmp_path / "dagster_dev.log"
    server = start([*command, "-m", "dagster_project.definitions"], root, home, log)
    proc = server.proc
    try:
        deadline = time.monotonic() + FOUND_SECONDS
        profile = CliRunner().invoke(
            app, ["profile", "zelda.quorn@example.org", "--workspace", str(root)]
        )
        while profile.exit_code != 0:
            assert proc.poll() is None, f"dagster dev exited:\n{server.log_tail()}"
            assert time.monotonic() < deadline, (
                f"not in the profile {FOUND_SECONDS} s after the server started:\n"
                f"{server.log_tail()}"
            )
            time.sleep(2)
            profile = CliRunner().invoke(
                app, ["profile", "zelda.quorn@example.org", "--workspace", str(root)]
            )
        assert "Zelda Quorn" in profile.output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records(dg.RunsFilter(tags={"cdp/trigger": "landing_files"}))
        run = record.dagster_run
        assert run.tags["cdp/sources"] == "crm_contacts"
        # the new file's source and what depends on it: not the other sources' ingestion
        selected = {key.to_user_string() for key in run.asset_selection}
        assert {"raw/crm_contacts", "customer_360"} <= selected
        assert "raw/web_events" not in selected
        steps = [
            entry
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event and entry.dagster_event.event_type_value == "STEP_START"
        ]
        assert len(steps) > 3
        assert len({entry.dagster_event.pid for entry in steps}) == 1  # one process
