"""The wheel carries everything an installed `cdp` needs: the dbt project, the workspace
and demo templates, the generator's word lists. Built, installed into a fresh venv (from
the local wheel and requirements.lock) and run on a one-source workspace, outside the
checkout; then run again with a dbt model that fails. (One slow test for both: each
`cdp run` costs Dagster's and dbt's start-up.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.takes(100)]


def _uv() -> str:
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.exists() else (shutil.which("uv") or "uv")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _offline_first(cmd, **kw) -> subprocess.CompletedProcess:
    """From uv's cache when it can; the package registry otherwise."""
    proc = subprocess.run(
        [str(c) for c in [*cmd, "--offline"]], capture_output=True, text=True, **kw
    )
    return proc if proc.returncode == 0 else _run(cmd, **kw)


def test_installed_wheel_runs_the_pipeline(tmp_path):
    dist = tmp_path / "dist"
    _offline_first([_uv(), "build", "--wheel", "--out-dir", dist, REPO], cwd=REPO)
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for carried in (
        "dbt_models/dbt_project.yml",
        "dbt_models/profiles.yml",
        "dbt_models/macros/normalise.sql",
        "dbt_models/models/intermediate/int_individuals_deduplicated.sql",
        "dbt_models/seeds/email_address_rules.csv",
        "cdp/templates/workspace/cdp.yml",
        "cdp/templates/demo/sources/crm_contacts.yml",
        "cdp/generate/data/vocab.json",
    ):
        assert carried in names, carried
    assert not any(n.startswith(("dbt_models/target/", "dbt_models/logs/")) for n in names)

    venv = tmp_path / "venv"
    _run([_uv(), "venv", "-q", venv, "--python", sys.executable])
    python = venv / "bin" / "python"
    _offline_first(
        [_uv(), "pip", "install", "-q", "--python", python, "-r", REPO / "requirements.lock"]
    )
    _offline_first([_uv(), "pip", "install", "-q", "--python", python, "--no-deps", wheel])

    # Outside the checkout, with nothing of it on the path.
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
    }
    project = _run(
        [python, "-c", "from cdp.harmonise.dbt_env import DBT_PROJECT_DIR as d; print(d)"],
        env=env,
        cwd=tmp_path,
    )
    assert Path(project.stdout.strip()).is_relative_to(venv), project.stdout

    cdp = venv / "bin" / "cdp"
    ws = tmp_path / "ws"
    _run([cdp, "init", ws], env=env, cwd=tmp_path)
    (ws / "landing" / "people").mkdir(parents=True)
    (ws / "landing" / "people" / "people.csv").write_text(
        'id,name,email\n1,Ann Lee,ann@x.org\n2,Dr. Bob Ng Jr.,bob@y.org\n3,"Lee, Ann",ann@x.org\n'
    )
    (ws / "sources" / "people.yml").write_text(
        "name: people\nlanding: landing/people/*.csv\nformat: csv\nprimary_key: id\n"
        "pii: [name, email]\nobjects:\n  individual: {full_name: name}\n"
        "  contact_point_email: {email_address: email}\n"
    )
    _run([cdp, "validate", "-w", ws], env=env, cwd=tmp_path)
    _run([cdp, "run", "-w", ws], env=env, cwd=tmp_path)
    out = _run(
        [
            cdp,
            "sql",
            "select first_name, last_name from individual order by 1, 2",
            "-f",
            "csv",
            "-w",
            ws,
        ],
        env=env,
        cwd=tmp_path,
    ).stdout
    assert out.splitlines() == ["first_name,last_name", "Ann,Lee", "Ann,Lee", "Bob,Ng"]
    site_project = Path(project.stdout.strip())
    assert not (site_project / "logs").exists() and not (site_project / "target").exists()

    # An error inside a run (a dbt model that fails) is one line: the asset, dbt's failing
    # node and dbt's message, not "The dbt CLI process with command ..." cut short; with
    # CDP_DEBUG=1 the traceback of the failing step comes first.
    import pyarrow.parquet as pq

    (part,) = (ws / "lake" / "raw" / "people").glob("*/*.parquet")
    pq.write_table(pq.read_table(part).drop_columns(["name"]), part)  # behind ingestion's back
    failed = subprocess.run(
        # --force: the lake was changed behind the run plan's back, so it sees nothing new
        [str(cdp), "run", "--force", "-w", str(ws)],
        env={**env, "CDP_DEBUG": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (line,) = [ln for ln in failed.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith(
        "error: dbt_harmonise: dbt model stg_people__individuals: Binder Error: Referenced "
        'column "name" not found'
    ), line
    assert "Traceback of the failing step" in failed.stderr and "dbt_build" in failed.stderr
