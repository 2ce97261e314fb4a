"""A dbt build killed while DuckDB copies a model over its file leaves the old file whole
and a half-written `tmp_<name>.parquet` beside it, with rows like any lake file's: the
next build and `cdp forget` remove it (cdp.io.atomic.clean_duckdb_tmp)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb

from cdp.io.atomic import clean_duckdb_tmp

COPY = """
import duckdb, sys
duckdb.execute(
    "copy (select range as id, md5(range::varchar) as email from range(200000000)) "
    f"to '{sys.argv[1]}' (format parquet)"
)
"""


def test_a_killed_copy_leaves_its_tmp_file_and_the_next_build_removes_it(tmp_path):
    model = tmp_path / "int_model.parquet"
    duckdb.execute(f"copy (select 1 as id, 'a@x.com' as email) to '{model}' (format parquet)")
    kept = tmp_path / "int_other.parquet"
    kept.write_bytes(model.read_bytes())
    half = tmp_path / "tmp_int_model.parquet"
    proc = subprocess.Popen([sys.executable, "-c", COPY, str(model)])
    try:
        deadline = time.monotonic() + 60
        while not (half.exists() and half.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert half.exists(), "DuckDB wrote no temporary file beside the one it replaces"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert half.exists()  # killed: nothing renamed it, nothing removed it
    assert duckdb.sql(f"select * from '{model}'").fetchall() == [(1, "a@x.com")]
    assert clean_duckdb_tmp(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, model.name])
