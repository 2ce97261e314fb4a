"""Phone numbers already read, kept between runs: `<workspace>/.cdp/cache/phones/`.

Reading a number with phonenumbers costs about 20 µs, and phones are nearly all distinct:
at 1,000,000 customers the raw loads hold 1.64 million distinct numbers, so every full
build spent over half a minute per model that reads them (phones, consents) on the same
numbers as the run before. A dbt process reads only numbers no earlier run kept.

The folder holds Parquet parts mapping "<region>\\x1f<number as given>" to its E.164
form (null: not a valid number). Each process that read new numbers adds one part with
them when it ends; past MAX_PARTS the parts are merged into one. Loading the kept
numbers costs about 0.9 s at a million customers (a dict of 1.6 million entries), more
than an increment's own numbers take to read (15,661 for 1% new customers, about
0.3 s), so a process loads them only once it has read LOAD_AFTER numbers itself: an
increment never pays for the load, a full build pays it early.

The cache holds personal data like the lake: `cdp forget` deletes it (it is only a
cache), and each part is written atomically. A part is ignored when the phonenumbers
version or the reading rules (FORMAT) differ from the ones that wrote it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
import uuid
from importlib.metadata import version as installed_version
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.io.parts import part_files

# Bump when cdp.harmonise.text.phone_e164 or the key format changes.
FORMAT = "1"
# Beyond this many numbers in memory, new ones are read but not kept: about 180 bytes
# each (1.6 million took 286 MB), so at most about 540 MB.
MAX_ENTRIES = 3_000_000
# Numbers a process reads itself before it loads the kept ones: reading this many costs
# about what the load does at a million customers (CDP_PHONE_CACHE_LOAD_AFTER overrides).
LOAD_AFTER = 30_000
# More parts than this when a process ends: they are merged into one.
MAX_PARTS = 16
_MISSING = object()


def cache_path(workspace: str | os.PathLike) -> Path:
    """The folder of the workspace's kept numbers."""
    from cdp.workspace import Workspace

    return Workspace(Path(workspace)).state_dir / "cache" / "phones"


def remove_cache(workspace: str | os.PathLike) -> None:
    """Delete every kept number (an erasure), in this layout and the older single file."""
    folder = cache_path(workspace)
    shutil.rmtree(folder, ignore_errors=True)
    folder.with_name("phones.parquet").unlink(missing_ok=True)


def _stamp() -> str:
    return f"{FORMAT}/{installed_version('phonenumbers')}"


def _read_part(part: Path) -> pa.Table | None:
    try:
        table = pq.read_table(part)
    except (OSError, pa.ArrowInvalid):
        return None  # half written or damaged: its numbers are read again
    meta = table.schema.metadata or {}
    return table if meta.get(b"cdp_phone_cache") == _stamp().encode() else None


class PhoneCache:
    """Numbers read by this process, and the kept ones once it has read `load_after`
    itself; the numbers it read that were not kept are saved as a new part when the
    process ends."""

    def __init__(self, path: Path | None, load_after: int = LOAD_AFTER):
        self.path = path
        self.known: dict[str, str | None] = {}
        self.new: dict[str, str | None] = {}
        self.load_after = load_after if path is not None else None
        self._lock = threading.Lock()  # DuckDB may call the UDF from several threads
        if path is not None:
            atexit.register(self.save)
            if load_after <= 0:
                self._load()

    def _load(self) -> None:
        self.load_after = None
        kept = _numbers(part_files(self.path))
        with self._lock:
            # numbers read before the load that a part already held need no new part
            self.new = {k: v for k, v in self.new.items() if kept.get(k, _MISSING) != v}
            kept.update(self.known)
            self.known = kept

    def get(self, key: str, read) -> str | None:
        hit = self.known.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        if self.load_after is not None and len(self.new) >= self.load_after:
            with _load_lock:
                if self.load_after is not None:
                    self._load()
            hit = self.known.get(key, _MISSING)
            if hit is not _MISSING:
                return hit
        value = read(key)
        with self._lock:
            if len(self.known) < MAX_ENTRIES:
                self.known[key] = value
                self.new[key] = value
        return value

    def save(self) -> None:
        """A new part with the numbers this process read; past MAX_PARTS, every part
        merged into one. A process that never loaded the kept numbers may save one a
        part already holds: the same answer twice, dropped when the parts are merged."""
        if self.path is None or not self.new:
            return
        from cdp.io.atomic import write_parquet

        with self._lock:
            keys = list(self.new)
            values = [self.new[k] for k in keys]
            self.new = {}
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            _adopt_single_file(self.path)
            part = self.path / f"part-{uuid.uuid4().hex}.parquet"
            write_parquet(part, _table(keys, values))
            parts = part_files(self.path)
            if len(parts) > MAX_PARTS:
                _merge(self.path, parts)
        except OSError:  # a cache: the next run reads them again
            pass


def _table(keys: list[str], values: list[str | None]) -> pa.Table:
    return pa.table({"key": keys, "e164": values}).replace_schema_metadata(
        {"cdp_phone_cache": _stamp()}
    )


def _adopt_single_file(folder: Path) -> None:
    """The cache of an earlier version, one file beside the folder, becomes its first part."""
    old = folder.with_name("phones.parquet")
    if old.is_file():
        os.replace(old, folder / "part-0-earlier.parquet")


def _numbers(parts: list[Path]) -> dict[str, str | None]:
    """The numbers the parts hold (a part from other reading rules counts for none)."""
    kept: dict[str, str | None] = {}
    for part in parts:
        table = _read_part(part)
        if table is not None:
            kept.update(zip(table["key"].to_pylist(), table["e164"].to_pylist(), strict=True))
    return kept


def _merge(folder: Path, parts: list[Path]) -> None:
    from cdp.io.atomic import write_parquet

    kept = _numbers(parts)
    write_parquet(
        folder / f"part-{uuid.uuid4().hex}.parquet", _table(list(kept), list(kept.values()))
    )
    for part in parts:
        part.unlink(missing_ok=True)


_load_lock = threading.Lock()
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
                load_after = int(os.environ.get("CDP_PHONE_CACHE_LOAD_AFTER") or LOAD_AFTER)
                cache = _caches[workspace] = PhoneCache(path, load_after)
    return cache
