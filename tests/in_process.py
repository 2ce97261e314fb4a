"""A cdp command run in the test's process through its CLI, as the `cdp` script runs it:
no interpreter start-up or imports of its own, and its dbt commands forked from the
module's warm dbt where the module has one (fixture `warm_dbt_commands`)."""

from __future__ import annotations

from typer.testing import CliRunner

from cdp.cli.main import app


def cdp(*args: str) -> str:
    """Run `cdp ARGS`, which must succeed; its output."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output[-3000:]
    return result.output
