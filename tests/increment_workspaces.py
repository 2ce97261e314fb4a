"""Small workspaces for the increment tests: a pipeline run in process, and a table's
rows by SQL (tests/test_increments.py, tests/test_increment_parts.py)."""

from __future__ import annotations

import duckdb

from cdp.io import lake
from cdp.workspace import resolve_workspace
from dagster_project.run import run_pipeline


def rows(path, sql: str) -> list[tuple]:
    """The query's rows, `{}` reading the table at `path` (a file or a folder of parts)."""
    return duckdb.execute(sql.replace("{}", lake.scan(path))).fetchall()


def run(ws) -> None:
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)


def workspace_keying_on_two_holders(tmp_path):
    """A new workspace (`cdp init`) where an email or phone held by more than two records
    says nothing about who holds it (identity.max_identifier_records: 2)."""
    from typer.testing import CliRunner

    from cdp.cli.main import app

    root = tmp_path / "ws"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    ws = resolve_workspace(root)
    settings = ws.settings_file.read_text()
    ws.settings_file.write_text(
        settings.replace("identity: {}", "identity: {max_identifier_records: 2}")
    )
    return ws
