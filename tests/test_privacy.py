"""Erasure and the suppression list on real files; retention; dbt dying with its parent.

The whole-workspace erasure test (forget a demo person, search every file, land the old
extracts again, run, search again) is in tests/test_pipeline.py, beside the demo run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cdp.errors import CdpError
from cdp.ingest import ingest_source
from cdp.ingest.manifest import read_manifest
from cdp.ingest.retention import expire_raw_loads
from cdp.privacy import suppression
from cdp.privacy.forget import forget
from cdp.privacy.keys import key_columns
from tests.ingest.conftest import HEADER, Env

ROWS = (
    "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
    "2,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
    "3,Cy,Ode,cy@x.com,22,2001-05-05,2024-01-01 10:00:00\n"
)


def _raw_values(env: Env, source: str) -> list[str]:
    table = pq.read_table(env.ws.raw_dir / source)
    return [str(v) for col in table.columns for v in col.to_pylist()]


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_the_keys_a_source_declares():
    from cdp.config.sources import SourceSpec

    spec = SourceSpec.model_validate(
        {
            "name": "orders",
            "landing": "landing/orders/*.csv",
            "format": "csv",
            "primary_key": "order_id",
            "objects": {
                "sales_order": {
                    "order_id": "order_id",
                    "individual_id": {"column": "account", "source": "shop"},
                }
            },
        }
    )
    kinds = {(k.kind, k.columns, k.source) for k in key_columns(spec)}
    assert kinds == {("record", ("account",), "shop"), ("order", ("order_id",), None)}


def test_forget_removes_the_rows_from_landing_and_raw_and_keeps_them_out(tmp_path):
    env = Env(tmp_path / "ws")
    env.land("people", "a.csv", HEADER + ROWS)
    ingest_source(env.ws, env.spec("people"))
    erasure = forget(env.ws, "ann@x.com")
    assert erasure.rows_removed >= 2  # the landing row and the raw row
    landing = (env.ws.landing_dir / "people" / "a.csv").read_text()
    assert "ann@x.com" not in landing and "bo@x.com" in landing
    assert "ann@x.com" not in _raw_values(env, "people")
    # The rewritten file is the one already loaded: not loaded again as new.
    assert ingest_source(env.ws, env.spec("people")).files_loaded == 0
    # An old extract landed again: Ann's row is dropped at the door, counted, not kept.
    env.land("people", "old.csv", HEADER + ROWS)
    result = ingest_source(env.ws, env.spec("people"))
    assert (result.rows_in, result.rows_kept, result.rows_suppressed) == (3, 2, 1)
    assert "ann@x.com" not in _raw_values(env, "people")
    assert result.rows_quarantined == 0  # quarantine would keep her row's text
    assert "ann@x.com" not in (env.ws.landing_dir / "people" / "old.csv").read_text()
    assert ingest_source(env.ws, env.spec("people")).files_loaded == 0  # scrubbed, not new
    # The list and the audit log hold hashes, never the address.
    for path in (suppression.list_path(env.ws), env.ws.state_dir / "erasure_log.jsonl"):
        data = path.read_bytes()
        assert b"ann@x.com" not in data and b"Ann" not in data
    log = [json.loads(x) for x in (env.ws.state_dir / "erasure_log.jsonl").read_text().splitlines()]
    assert log[0]["rows_removed"] == erasure.rows_removed and not log[0]["dry_run"]
    assert oct(suppression.salt_path(env.ws).stat().st_mode)[-3:] == "600"


def test_a_dry_run_changes_nothing(tmp_path):
    env = Env(tmp_path / "ws")
    env.land("people", "a.csv", HEADER + ROWS)
    ingest_source(env.ws, env.spec("people"))
    before = _tree_digest(env.ws.root / "landing") + _tree_digest(env.ws.lake_dir)
    plan = forget(env.ws, "people:2", dry_run=True)
    assert plan.rows_removed >= 2 and plan.dry_run
    assert _tree_digest(env.ws.root / "landing") + _tree_digest(env.ws.lake_dir) == before
    assert not suppression.list_path(env.ws).exists()


def test_a_subject_that_is_nothing_is_refused(tmp_path):
    env = Env(tmp_path / "ws")
    with pytest.raises(CdpError, match="is not an email, a phone number"):
        forget(env.ws, "nobody-at-all")


def test_superseded_raw_loads_expire_after_the_retention_days(tmp_path):
    env = Env(tmp_path / "ws")
    env.land("people", "a.csv", HEADER + ROWS)
    ingest_source(env.ws, env.spec("people"))
    env.land("people", "a.csv", HEADER + ROWS.replace("Ann", "Anne"))  # the file changes
    ingest_source(env.ws, env.spec("people"))
    spec = env.spec("people")
    assert expire_raw_loads(env.ws, spec, days=30) == []  # superseded, but not old yet
    later = datetime.now(UTC) + timedelta(days=31)
    assert expire_raw_loads(env.ws, spec, days=30, now=later) == ["000001"]
    assert not (env.ws.raw_dir / "people" / "load_id=000001").exists()
    assert (env.ws.raw_dir / "people" / "load_id=000002").exists()
    statuses = dict(
        zip(
            *read_manifest(env.ws, "people").select(["load_id", "status"]).to_pydict().values(),
            strict=True,
        )
    )
    assert statuses == {"000001": "expired", "000002": "loaded"}
    assert ingest_source(env.ws, spec).files_loaded == 0  # the expired version stays skipped


def test_retention_refuses_unknown_keys(tmp_path):
    from cdp.config.settings import load_settings

    path = tmp_path / "cdp.yml"
    path.write_text("retention: {keep_forever: true}\n")
    with pytest.raises(CdpError, match=r"retention\.keep_forever: unknown key"):
        load_settings(path)


def test_a_dbt_launched_by_cdp_dies_with_its_parent(tmp_path):
    """cdp-dbt asks the kernel to kill it when its parent dies; a killed `cdp run` leaves
    no dbt behind writing the lake."""
    child_pid = tmp_path / "child.pid"
    child = (
        "from cdp.harmonise.dbt_child import _die_with_parent; import os, time; "
        f"_die_with_parent(); open({str(child_pid)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)",
        ]
    )
    deadline = time.monotonic() + 30
    # (the child creates the file before it writes its pid: wait for the pid itself)
    while not (child_pid.exists() and child_pid.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(child_pid.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if "Z" in (Path(f"/proc/{pid}/stat").read_text().split()[2:3] or [""])[0]:
            break  # a zombie is dead, waiting for init to reap it
        time.sleep(0.1)
    alive = (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the child outlived its killed parent"


def test_dagster_runs_dbt_through_the_launcher():
    from dagster_project.assets.dbt import dbt_executable

    assert Path(dbt_executable()).name == "cdp-dbt"


def test_a_suppressed_email_keeps_its_rows_out_whatever_the_case(tmp_path):
    env = Env(tmp_path / "ws")
    suppression.add(env.ws, {"email:bo@x.com"}, "e1")
    env.land("people", "a.csv", HEADER + ROWS.replace("bo@x.com", " BO@X.com"))
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_suppressed == 1 and result.rows_kept == 2
    assert not any("bo@x" in v.lower() for v in _raw_values(env, "people"))
