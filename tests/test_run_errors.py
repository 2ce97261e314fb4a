"""An error inside a run reaches the user as one line: the asset, then the cause.

For dbt, the cause is dbt's failing node and its message (from run_results.json), not
dagster-dbt's "The dbt CLI process with command ..." cut mid-sentence.
"""

from __future__ import annotations

import json

from cdp.harmonise.dbt_env import dbt_failure, dbt_log_error
from dagster_project.run import failure_cause


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


# A real run with a dbt model that fails: tests/test_packaging.py (one slow test for both).
