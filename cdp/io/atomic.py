"""Atomic writes: write beside the target under a temporary name, then rename.

A reader never sees a half-written file, and a run killed mid-write leaves only
temporary names behind, which the next run ignores and cleans.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_PREFIX = ".tmp-"


def _tmp_sibling(target: Path) -> Path:
    return target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}-{target.name}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(target)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_parquet(target: str | os.PathLike, table: pa.Table, **kwargs) -> None:
    """Write one Parquet file atomically (zstd by default)."""
    kwargs.setdefault("compression", "zstd")
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, **kwargs)


def staged_path(target: str | os.PathLike) -> Path:
    """Where `stage_parquet` writes `target`: one fixed name beside it, so a run killed
    before its commit leaves one file, which the next stage overwrites."""
    target = Path(target)
    return target.with_name(f"{TMP_PREFIX}staged-{target.name}")


def stage_parquet(target: str | os.PathLike, table: pa.Table, **kwargs) -> Path:
    """Write `table` completely (zstd, synced) under `staged_path(target)` and return
    that path; `os.replace` onto `target` later makes it current in one step."""
    kwargs.setdefault("compression", "zstd")
    staged = staged_path(target)
    staged.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, staged, **kwargs)
    _fsync(staged)
    return staged


def replace_dir(target: str | os.PathLike, staged: str | os.PathLike) -> None:
    """Swap a fully written directory `staged` into place as `target`.

    The old directory is first renamed aside, so at every instant `target` is
    either the complete old version or the complete new one.
    """
    target, staged = Path(target), Path(staged)
    old = None
    if target.exists():
        old = _tmp_sibling(target)
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# DuckDB's COPY over an existing file writes `tmp_<name>` beside it and renames it over
# the file when complete; a COPY killed mid-way leaves it (rows like any lake file's).
DUCKDB_TMP_PREFIX = "tmp_"


def clean_duckdb_tmp(directory: str | os.PathLike) -> int:
    """Remove the half-written files of killed DuckDB COPYs in `directory` and in its
    tables kept as folders of parts (cdp.io.parts). Returns how many were removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    pattern = f"{DUCKDB_TMP_PREFIX}*.parquet"
    found = [*directory.glob(pattern), *directory.glob(f"*.parquet/{pattern}")]
    stale = [p for p in found if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def clean_tmp(directory: str | os.PathLike) -> int:
    """Remove temporaries left behind by a killed run. Returns how many were removed."""
    directory = Path(directory)
    if not directory.exists():
        return 0
    removed = 0
    for p in directory.rglob(f"{TMP_PREFIX}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed += 1
    return removed
