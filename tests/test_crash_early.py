"""Killed while landing files, inside dbt's harmonise build and between identity's
outputs: the rerun equals a clean run (tests/crash.py)."""

from __future__ import annotations

import pytest

from tests.crash import killed_then_rerun_equals_clean

pytestmark = [pytest.mark.slow, pytest.mark.takes(125)]


def test_a_run_killed_early_then_rerun_equals_a_clean_run(ran, tmp_path):
    killed_then_rerun_equals_clean(
        ran[0].root,
        tmp_path,
        (
            "ingest.file_loaded@3",
            "dbt.dbt_harmonise@10",
            "identity.outputs",
        ),
    )
