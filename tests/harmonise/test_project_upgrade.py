"""A workspace parsed by one version of the dbt project, then run by the next."""

from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner

import cdp.harmonise.dbt_env as dbt_env
from cdp.cli.main import app
from cdp.workspace import resolve_workspace

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(30),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


def test_a_new_version_of_the_project_is_parsed_from_scratch(tmp_path, monkeypatch):
    """A new macro file beside a changed one: dbt's partial parsing of that change left
    the new file's macros undefined ("'tested_rows' is undefined"), so `prepare` parses
    a project whose own files changed, by content, without the last parse's state. The
    new files may be older than the manifest (an install keeps a package's times)."""
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

    changed = project / "macros" / "increment.sql"
    before = changed.read_text()

    def new_version() -> None:
        added.write_text(text)
        changed.write_text(before + "\n{#- a change -#}\n")
        for path in (added, changed):
            os.utime(path, (parsed - 3600, parsed - 3600))

    new_version()
    dbt_env.prepare(ws)
    assert "increment_tests.sql" in manifest.read_text()
    dbt_env.run_dbt(ws, ["ls", "--quiet"])  # dbt's own partial parse of the new version

    # Back to the version before, which parses on its own (as its cdp would), then to the
    # new one again: the project's files are as this prepare last parsed them, but dbt's
    # state is the other version's.
    added.unlink()
    changed.write_text(before)
    dbt_env.run_dbt(ws, ["parse", "--quiet"])
    new_version()
    dbt_env.prepare(ws)
    dbt_env.run_dbt(ws, ["ls", "--quiet"])
