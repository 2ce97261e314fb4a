"""Shared fixtures: small generated workspaces, so tests run on real files quickly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# dagster-dbt and the tests call `dbt`; use the one installed next to this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """A workspace made by `cdp init` + `cdp generate` with a few hundred customers."""
    from typer.testing import CliRunner

    from cdp.cli.main import app

    root = tmp_path_factory.mktemp("demo") / "ws"
    runner = CliRunner()
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["generate", "--workspace", str(root), "--customers", "300", "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    return root
