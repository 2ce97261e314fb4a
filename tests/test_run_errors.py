"""An error inside a run reaches the user as one line: the asset, then the cause.

For dbt, the cause is dbt's failing node and its message (from run_results.json), not
dagster-dbt's "The dbt CLI process with command ..." cut mid-sentence.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.config.sources import load_sources
from cdp.harmonise.dbt_env import dbt_failure, dbt_log_error
from cdp.ingest import ingest_source
from cdp.workspace import Workspace
from dagster_project.run import failure_cause

runner = CliRunner()


def test_dbt_failure_names_the_node_and_dbt_message(tmp_path):
    (tmp_path / "run_results.json").write_text(
        json.dumps(
            {
                "results": [
                    {"status": "success", "unique_id": "model.cdp.ok", "message": "OK"},
                    {
                        "status": "error",
                        "unique_id": "model.cdp.stg_people__individuals",
                        "message": "Runtime Error in model stg_people__individuals (x.sql)\n"
                        '  Binder Error: Referenced column "last" not found in FROM clause!\n'
                        "  Candidate bindings: ...",
                    },
                    {
                        "status": "fail",
                        "unique_id": "test.cdp.accepted_values_x.abc",
                        "message": "Got 2 results, configured to fail if != 0",
                    },
                ]
            }
        )
    )
    assert dbt_failure(tmp_path) == (
        'dbt model stg_people__individuals: Binder Error: Referenced column "last" not found '
        f"in FROM clause! (and 1 more failing node(s); see {tmp_path / 'run_results.json'})"
    )
    assert dbt_failure(tmp_path / "nothing") is None


def test_dagster_dbt_error_is_unwrapped_to_dbt_message():
    from dagster._utils.error import SerializableErrorInfo

    message = (
        "dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt CLI process with command\n\n"
        "`dbt build`\n\nfailed with exit code `2`. Check the stdout in the Dagster compute "
        "logs.\n\nErrors parsed from dbt logs:\n\n"
        "Compilation Error in model x (models/x.sql)\n  Parsing Error: bad yaml\n"
    )
    err = SerializableErrorInfo(
        message,
        [],
        "DagsterExecutionStepExecutionError",
        cause=SerializableErrorInfo(message, [], "DagsterDbtCliRuntimeError"),
    )
    assert failure_cause(err) == "Parsing Error: bad yaml"
    assert dbt_log_error("nothing useful") is None


@pytest.mark.slow
def test_a_model_that_fails_is_one_line_naming_asset_node_and_cause(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(
        "name: people\nlanding: landing/people/*.csv\nformat: csv\nprimary_key: id\n"
        "objects:\n  individual: {first_name: first, last_name: last}\n"
    )
    (ws.landing_dir / "people").mkdir()
    (ws.landing_dir / "people" / "p.csv").write_text("id,first,last\n1,Ann,Lee\n")
    (spec,) = load_sources(ws.sources_dir)
    ingest_source(ws, spec)
    # The raw zone loses a mapped column behind ingestion's back: the staging model fails.
    (part,) = ws.raw_dir.glob("people/*/*.parquet")
    pq.write_table(pq.read_table(part).drop_columns(["last"]), part)

    # CDP_DEBUG=1 adds the traceback; the error line is the same with or without it.
    monkeypatch.setenv("CDP_DEBUG", "1")
    result = runner.invoke(app, ["run", "--workspace", str(ws.root)])
    assert result.exit_code == 1
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert line.startswith(
        "error: dbt_harmonise: dbt model stg_people__individuals: Binder Error: Referenced "
        'column "last" not found'
    ), result.output
    assert "The dbt CLI process" not in line
    assert "Traceback" in result.output and "dbt_build" in result.output
