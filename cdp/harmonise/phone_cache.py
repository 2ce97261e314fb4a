"""Phone numbers already read, kept between runs: `<workspace>/.cdp/cache/phones.parquet`.

Reading a number with phonenumbers costs about 20 µs, and phones are nearly all distinct:
at 1,000,000 customers the raw loads hold 1.64 million distinct numbers, so every run
spent over half a minute per model that reads them (phones, consents) on the same
numbers as the run before. Each dbt process now starts from the numbers earlier runs
read, reads only the new ones, and adds them to the file when it ends.

The file maps "<region>\\x1f<number as given>" to its E.164 form (null: not a valid
number). It holds personal data like the lake: `cdp forget` deletes it (it is only a
cache), and it is written atomically. It is ignored when the phonenumbers version or
the reading rules (FORMAT) differ from the ones that wrote it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from importlib.metadata import version as installed_version
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Bump when cdp.harmonise.text.phone_e164 or the key format changes.
FORMAT = "1"
# Beyond this many numbers, new ones are read but not kept: about 180 bytes each in
# memory (1.6 million took 286 MB), so at most about 540 MB.
MAX_ENTRIES = 3_000_000
_MISSING = object()


def cache_path(workspace: str | os.PathLike) -> Path:
    from cdp.workspace import Workspace

    return Workspace(Path(workspace)).state_dir / "cache" / "phones.parquet"


def _stamp() -> str:
    return f"{FORMAT}/{installed_version('phonenumbers')}"


class PhoneCache:
    """A dict of read numbers, loaded from the workspace's file on first use and saved
    (merged) when the process ends, if it read any new number."""

    def __init__(self, path: Path | None):
        self.path = path
        self.known: dict[str, str | None] = {}
        self.added = 0
        self._lock = threading.Lock()  # DuckDB may call the UDF from several threads
        if path is not None:
            self._load()
            atexit.register(self.save)

    def _load(self) -> None:
        try:
            table = pq.read_table(self.path)
        except (OSError, pa.ArrowInvalid):
            return  # no cache yet, or an unreadable one: it is rebuilt
        meta = table.schema.metadata or {}
        if meta.get(b"cdp_phone_cache") != _stamp().encode():
            return
        self.known = dict(zip(table["key"].to_pylist(), table["e164"].to_pylist(), strict=True))

    def get(self, key: str, read) -> str | None:
        hit = self.known.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        value = read(key)
        with self._lock:
            if len(self.known) < MAX_ENTRIES:
                self.known[key] = value
                self.added += 1
        return value

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        from cdp.io.atomic import write_parquet

        with self._lock:
            keys = list(self.known)
            values = [self.known[k] for k in keys]
            self.added = 0
        table = pa.table({"key": keys, "e164": values}).replace_schema_metadata(
            {"cdp_phone_cache": _stamp()}
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # a cache: the next run reads them again
            write_parquet(self.path, table)


_caches: dict[str, PhoneCache] = {}
# DuckDB calls the UDF from several threads at once: without the lock, two threads each
# made a cache at the first call, and the one saved last (holding a few hundred numbers)
# replaced the other's million in the file.
_caches_lock = threading.Lock()
_persist = False


def persist_in_workspace() -> None:
    """Keep this process's numbers in the workspace's file. Only dbt's process does
    (cdp.harmonise.duckdb_plugin): it reads the lake, where erased people are gone. A
    process reading landing files (`cdp validate` samples) must not keep what it read."""
    global _persist
    _persist = True


def phone_cache() -> PhoneCache:
    """The cache of the workspace CDP_WORKSPACE names, where this process keeps one
    (persist_in_workspace); in memory only otherwise."""
    workspace = (os.environ.get("CDP_WORKSPACE") or "") if _persist else ""
    cache = _caches.get(workspace)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(workspace)
            if cache is None:
                path = cache_path(workspace) if workspace else None
                cache = _caches[workspace] = PhoneCache(path)
    return cache
