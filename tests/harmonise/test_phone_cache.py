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


def _read(ws, mode="persist", load_after: int = 0) -> dict:
    """The numbers' E.164 forms, read in a new process; `load_after`: how many numbers it
    reads itself before it loads the kept ones (0: at once)."""
    import json

    env = {"CDP_WORKSPACE": str(ws), "PATH": "", "CDP_PHONE_CACHE_LOAD_AFTER": str(load_after)}
    out = subprocess.run(
        [sys.executable, "-c", QUERY, mode], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def _plant(ws, table: pa.Table, stamp: str | None = None, name: str = "part-planted") -> None:
    folder = cache_path(ws)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"cdp_phone_cache": stamp or _stamp()}
    pq.write_table(table.replace_schema_metadata(meta), folder / f"{name}.parquet")


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
    for part in cache_path(tmp_path).iterdir():
        part.unlink()
    _plant(tmp_path, pa.table({"key": ["US\x1f(415) 234-5678"], "e164": ["+19999999999"]}))
    assert _read(tmp_path)["(415) 234-5678"] == "+19999999999"


def test_a_process_reading_few_numbers_does_not_load_the_kept_ones(tmp_path):
    """Loading a million kept numbers costs more than an increment's own numbers take to
    read: below LOAD_AFTER numbers, a process reads them and adds them as a part."""
    _plant(tmp_path, pa.table({"key": ["US\x1f(415) 234-5678"], "e164": ["+19999999999"]}))
    assert _read(tmp_path, load_after=3)["(415) 234-5678"] == "+14152345678"
    assert len(list(cache_path(tmp_path).iterdir())) == 2  # the planted part and its own


def test_the_kept_numbers_are_loaded_once_a_process_has_read_enough_itself(tmp_path):
    from cdp.harmonise.phone_cache import PhoneCache

    _plant(tmp_path, pa.table({"key": ["b", "c"], "e164": ["+2", None]}))
    read = []
    cache = PhoneCache(cache_path(tmp_path), load_after=1)

    def parse(key):
        read.append(key)
        return f"parsed {key}"

    assert cache.get("a", parse) == "parsed a"
    assert cache.get("b", parse) == "+2"  # one number read: the kept ones are loaded
    assert cache.get("c", parse) is None  # an invalid number kept as null is an answer too
    assert read == ["a"]
    cache.save()
    saved = [pq.read_table(p).to_pylist() for p in sorted(cache_path(tmp_path).iterdir())]
    assert [{"key": "a", "e164": "parsed a"}] in saved  # only what it read itself


def test_parts_past_the_limit_are_merged_into_one(tmp_path):
    from cdp.harmonise.phone_cache import MAX_PARTS

    for n in range(MAX_PARTS):
        _plant(tmp_path, pa.table({"key": ["US\x1f12"], "e164": [None]}), name=f"part-{n:02d}")
    _read(tmp_path, load_after=99)  # its own part makes one too many
    parts = list(cache_path(tmp_path).iterdir())
    assert len(parts) == 1
    merged = pq.read_table(parts[0]).to_pylist()
    assert sorted(merged, key=str) == sorted(
        [
            {"key": "US\x1f12", "e164": None},
            {"key": "US\x1f(415) 234-5678", "e164": "+14152345678"},
        ],
        key=str,
    )


def test_the_single_file_of_an_earlier_version_becomes_a_part(tmp_path):
    old = cache_path(tmp_path).with_name("phones.parquet")
    old.parent.mkdir(parents=True)
    planted = pa.table({"key": ["US\x1f1"], "e164": ["+19999999999"]})
    pq.write_table(planted.replace_schema_metadata({"cdp_phone_cache": _stamp()}), old)
    _read(tmp_path, load_after=99)
    assert not old.exists()
    rows = pq.read_table(cache_path(tmp_path)).to_pylist()
    assert {"key": "US\x1f1", "e164": "+19999999999"} in rows and len(rows) == 3


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
    call (at a million customers, each loading 1.6 million numbers), and each saved what
    it read: one cache, one part with every number read."""
    earlier = 200_000  # a file that takes a moment to load: the first calls overlap
    keys = [f"US\x1f{n:07d}" for n in range(earlier)]
    _plant(tmp_path, pa.table({"key": keys, "e164": keys}))
    env = {"CDP_WORKSPACE": str(tmp_path), "PATH": "", "CDP_PHONE_CACHE_LOAD_AFTER": "0"}
    subprocess.run([sys.executable, "-c", THREADS], env=env, check=True)
    parts = sorted(cache_path(tmp_path).iterdir())
    assert len(parts) == 2
    assert sorted(pq.read_metadata(p).num_rows for p in parts) == [8, earlier]
