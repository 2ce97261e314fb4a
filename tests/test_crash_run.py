"""Killed while landing files, inside dbt's harmonise build, between identity's outputs,
inside dbt's marts build (where segments and their history are made) and with an export
written but not its manifest: the rerun equals a clean run (tests/crash.py)."""

from __future__ import annotations

import pytest

from tests.crash import killed_then_rerun_equals_clean

pytestmark = [pytest.mark.slow, pytest.mark.takes(160)]


def test_a_run_killed_anywhere_then_rerun_equals_a_clean_run(ran, tmp_path):
    killed_then_rerun_equals_clean(
        ran[0].root,
        tmp_path,
        (
            "ingest.file_loaded@3",
            "dbt.dbt_harmonise@10",
            "identity.outputs",
            "dbt.dbt_marts@10",
            "export.staged",
        ),
    )
