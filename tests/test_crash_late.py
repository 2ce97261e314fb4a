"""Killed inside dbt's marts build (where segments and their history are made) and with
an export written but not its manifest: the rerun equals a clean run (tests/crash.py)."""

from __future__ import annotations

import pytest

from tests.crash import killed_then_rerun_equals_clean

pytestmark = [pytest.mark.slow, pytest.mark.takes(140)]


def test_a_run_killed_late_then_rerun_equals_a_clean_run(ran, tmp_path):
    killed_then_rerun_equals_clean(
        ran[0].root,
        tmp_path,
        (
            "dbt.dbt_marts@10",
            "export.staged",
        ),
    )
