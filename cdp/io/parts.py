"""A harmonised table (or an attributed mart: cdp.harmonise.increments.MARTS.parted) kept
as a folder of Parquet parts between increments.

A full build writes each deduplicated table as one file, `x.parquet`. Before a harmonise
increment the file becomes a folder holding it as its first part
(`x.parquet/part-00000.parquet`, marked by `_cdp_parts`), and the increment writes only
the rows it computed again as a new part. Earlier parts are written again only where
they hold an older row of a record staged again, or a row of a snapshot source taken
whole (dbt_models/macros/engine/duckdb_external.sql). A load that only adds records (new
events, orders, consents, people) therefore costs its own rows, not the table's.

Readers take a folder of parts like a file (cdp.io.lake), as they do Spark's folders.
After a successful build, empty parts go and, past MAX_PARTS, the parts but the largest
are merged into one, so nightly runs do not pile up small files. Everything here runs
while the layer's build record is absent (cdp.harmonise.increments): a step killed half
way leaves a folder the next run does not trust, and that run builds the table whole.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MARKER = "_cdp_parts"
PREFIX = "part-"
# More parts than this after a build: all but the largest are merged into one.
MAX_PARTS = 8


def is_parted(path: Path) -> bool:
    """A folder of parts this project wrote (Spark's folders carry no marker)."""
    return (Path(path) / MARKER).is_file()


def part_files(path: Path) -> list[Path]:
    return sorted(Path(path).glob(f"{PREFIX}*.parquet"))


def _number(part: Path) -> int:
    return int(part.name[len(PREFIX) :].split(".", 1)[0])


def next_part(path: Path) -> Path:
    numbers = [_number(p) for p in part_files(path)]
    return Path(path) / f"{PREFIX}{max(numbers, default=-1) + 1:05d}.parquet"


def _holds_rows(file: Path) -> bool:
    """False for the one all-null row an empty model's file holds
    (macros/engine/duckdb_external.sql): it must not become a part beside real rows."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(file)
    if meta.num_rows != 1:
        return meta.num_rows > 0
    first = pq.read_table(file, columns=[meta.schema.names[0]]).column(0)
    return first.null_count == 0


def split(path: Path) -> bool:
    """Make the table at `path` a folder of parts, its file the first part. True when
    `path` is (now) such a folder; False for a missing or empty table, which the
    increment then writes whole as before."""
    path = Path(path)
    if is_parted(path):
        return True
    if not path.is_file() or not _holds_rows(path):
        return False
    staging = path.with_name(f".{path.name}.parts")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / MARKER).write_text("parts of one table: read them together\n")
    os.replace(path, staging / f"{PREFIX}00000.parquet")
    # killed here, `path` is missing: the next build is full (increments._whole)
    os.replace(staging, path)
    return True


def remove(path: Path) -> None:
    """Before a full build writes `path` as one file again: the folder goes (and what
    a killed split left)."""
    path = Path(path)
    shutil.rmtree(path.with_name(f".{path.name}.parts"), ignore_errors=True)
    if is_parted(path):
        shutil.rmtree(path)


def whole(path: Path) -> bool:
    """Every part's footer is readable (a part is written through a temporary file, so
    this fails only for a folder left half made)."""
    import pyarrow.parquet as pq

    parts = part_files(path)
    if not is_parted(path) or not parts:
        return False
    try:
        for part in parts:
            pq.read_metadata(part)
    except (OSError, ValueError):
        return False
    return True


def sql_string(path: Path) -> str:
    """A path as an SQL string (a workspace folder may hold a quote)."""
    return "'" + str(path).replace("'", "''") + "'"


def tidy(path: Path, max_parts: int = MAX_PARTS) -> None:
    """After a build: empty parts removed (one is kept, for the columns), and past
    `max_parts` every part but the largest merged into one."""
    import duckdb
    import pyarrow.parquet as pq

    from cdp.io.atomic import atomic_path, clean_duckdb_tmp

    path = Path(path)
    clean_duckdb_tmp(path)
    rows = {part: pq.read_metadata(part).num_rows for part in part_files(path)}
    empty = [part for part, n in rows.items() if n == 0]
    for part in empty[: len(rows) - 1] if len(empty) == len(rows) else empty:
        part.unlink()
        del rows[part]
    if len(rows) <= max_parts:
        return
    largest = max(rows, key=lambda part: (rows[part], -_number(part)))
    small = [part for part in rows if part != largest]
    merged = next_part(path)
    listed = ", ".join(sql_string(part) for part in small)
    with atomic_path(merged) as staging, duckdb.connect() as con:
        con.execute(
            f"copy (select * from read_parquet([{listed}])) to {sql_string(staging)} (format parquet)"
        )
    # killed before these go, rows are there twice: the record of the build is not
    # written yet, so the next build is full
    for part in small:
        part.unlink()
