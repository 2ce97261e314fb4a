"""Phone numbers read in one dbt process are kept for the next (cdp.harmonise.phone_cache).

Each case runs in its own Python process, as dbt's is: the cache is saved when the
process ends."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.harmonise.phone_cache import _stamp, cache_path

QUERY = """
import duckdb, json, sys
from cdp.harmonise.normalise import register_functions
from cdp.harmonise.phone_cache import persist_in_workspace
if sys.argv[1] == "persist":
    persist_in_workspace()
con = duckdb.connect()
register_functions(con)
rows = con.execute(
    "select n, cdp_phone_e164(n, 'US') from (values ('(415) 234-5678'), ('12')) t(n) order by n"
).fetchall()
print(json.dumps(rows))
"""


def _read(ws, mode="persist") -> dict:
    import json

    env = {"CDP_WORKSPACE": str(ws), "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", QUERY, mode], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def test_numbers_read_are_saved_and_read_from_the_file_next_time(tmp_path):
    assert _read(tmp_path) == {"(415) 234-5678": "+14152345678", "12": None}
    saved = pq.read_table(cache_path(tmp_path)).to_pylist()
    # an invalid number is kept too (as null), so it is not read again either
    assert sorted(saved, key=str) == sorted(
        [
            {"key": "US\x1f(415) 234-5678", "e164": "+14152345678"},
            {"key": "US\x1f12", "e164": None},
        ],
        key=str,
    )
    # The next process answers from the file: a value planted there is what it returns.
    planted = pa.table({"key": ["US\x1f(415) 234-5678"], "e164": ["+19999999999"]})
    pq.write_table(
        planted.replace_schema_metadata({"cdp_phone_cache": _stamp()}), cache_path(tmp_path)
    )
    assert _read(tmp_path)["(415) 234-5678"] == "+19999999999"


def test_a_cache_from_other_reading_rules_is_ignored(tmp_path):
    planted = pa.table({"key": ["US\x1f(415) 234-5678"], "e164": ["+19999999999"]})
    cache_path(tmp_path).parent.mkdir(parents=True)
    pq.write_table(
        planted.replace_schema_metadata({"cdp_phone_cache": "0/old"}), cache_path(tmp_path)
    )
    assert _read(tmp_path)["(415) 234-5678"] == "+14152345678"


def test_a_process_that_does_not_persist_leaves_no_file(tmp_path):
    """`cdp validate` reads landing samples, which may hold erased people: it keeps nothing."""
    assert _read(tmp_path, mode="memory")["(415) 234-5678"] == "+14152345678"
    assert not cache_path(tmp_path).exists()


THREADS = """
import threading
from cdp.harmonise.phone_cache import persist_in_workspace, phone_cache
persist_in_workspace()
start = threading.Barrier(8)

def first_call(n):
    start.wait()  # every thread makes its first call at once, as DuckDB's do
    phone_cache().get(f"US\\x1f{n}", lambda key: f"+1{n}")

threads = [threading.Thread(target=first_call, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_threads_calling_at_once_share_one_cache(tmp_path):
    """DuckDB runs the UDF on several threads. Each made a cache of its own at its first
    call, and the one saved last replaced the file: at a million customers a few hundred
    numbers were kept of a million read."""
    earlier = 200_000  # a file that takes a moment to load: the first calls overlap
    keys = [f"US\x1f{n:07d}" for n in range(earlier)]
    table = pa.table({"key": keys, "e164": keys})
    cache_path(tmp_path).parent.mkdir(parents=True)
    pq.write_table(
        table.replace_schema_metadata({"cdp_phone_cache": _stamp()}), cache_path(tmp_path)
    )
    env = {"CDP_WORKSPACE": str(tmp_path), "PATH": ""}
    subprocess.run([sys.executable, "-c", THREADS], env=env, check=True)
    assert pq.read_table(cache_path(tmp_path)).num_rows == earlier + 8
