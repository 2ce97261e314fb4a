"""A workspace parsed by one version of the dbt project, then run by the next."""

from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner

import cdp.harmonise.dbt_env as dbt_env
from cdp.cli.main import app
from cdp.workspace import resolve_workspace

pytestmark = [pytest.mark.slow, pytest.mark.takes(30)]


def test_a_new_version_of_the_project_is_parsed_from_scratch(tmp_path, monkeypatch):
    """A new macro file beside a changed one: dbt's partial parsing of that change left
    the new file's macros undefined ("'tested_rows' is undefined"), so `prepare` parses
    a project whose own files changed without the last parse's state."""
    project = tmp_path / "project"
    shutil.copytree(
        dbt_env.DBT_PROJECT_DIR,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    added = project / "macros" / "increment_tests.sql"
    text = added.read_text()
    added.unlink()  # the version before: no such file
    monkeypatch.setattr(dbt_env, "DBT_PROJECT_DIR", project)
    assert CliRunner().invoke(app, ["init", str(tmp_path / "ws")]).exit_code == 0
    ws = resolve_workspace(tmp_path / "ws")
    manifest = dbt_env.prepare(ws)
    parsed = manifest.stat().st_mtime

    added.write_text(text)
    changed = project / "macros" / "increment.sql"
    changed.write_text(changed.read_text() + "\n{#- a change -#}\n")
    for path in (added, changed):  # newer than the manifest, whatever the clock's grain
        os.utime(path, (parsed + 2, parsed + 2))
    dbt_env.prepare(ws)
    assert manifest.stat().st_mtime > parsed
    assert "increment_tests.sql" in manifest.read_text()
