"""Running a model's dbt data tests as a build runs them, for tests that plant a bad row
in a table and check which tests find it (dbt_models/macros/increment_tests.sql)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

# a model's data tests, as a build runs them: not its unit tests (they test the SQL on
# hand-made rows), and not the tests it shares with a model not selected
TEST = [
    "test",
    "--exclude-resource-type",
    "unit_test",
    "--indirect-selection",
    "cautious",
    "--select",
]


def failure_on_increment(ws, monkeypatch, layer, model: str) -> str | None:
    """The data tests of `model` alone (or the tests `model` selects, as
    `test_name:...`), run as the layer's increment runs them: None when they pass, else
    dbt's failing test and message."""
    from cdp.harmonise.dbt_env import dbt_failure, dbt_resource

    dbt = dbt_resource(ws)  # (the workspace's environment, increments off)
    monkeypatch.setenv(layer.env, json.dumps({"new_loads": {"people": ["2"]}}))
    try:
        (ws.dbt_target_dir / "run_results.json").unlink(missing_ok=True)
        invocation = dbt.cli(
            [*TEST, model],
            target_path=ws.dbt_target_dir,
            raise_on_error=False,
        )
        invocation.wait()
    finally:
        monkeypatch.setenv(layer.env, "")
    return None if invocation.is_successful() else dbt_failure(ws.dbt_target_dir, ws)


def failed_whole(ws, model: str) -> str:
    """dbt's failing test when `model` (or `test_name:...`) is tested whole, as a full
    build tests it."""
    from cdp.errors import CdpError
    from cdp.harmonise.dbt_env import run_dbt

    with pytest.raises(CdpError) as failed:
        run_dbt(ws, [*TEST, model])
    return str(failed.value)


def with_row(path: Path, sql: str) -> None:
    """The Parquet file at `path` with one more row, `sql` selecting it from the file;
    written into the same inode, which the next test of the module checks."""
    staging = path.with_name(f".{path.name}")
    duckdb.execute(
        f"copy (select * from read_parquet('{path}') union all by name ({sql.format(f=path)})) "
        f"to '{staging}' (format parquet)"
    )
    path.write_bytes(staging.read_bytes())
    staging.unlink()
