"""A dataset of the lake as its readers find it, whichever engine wrote it.

DuckDB (dbt-duckdb's `external`) writes a model as one Parquet file, `x.parquet`;
Spark writes the same path as a folder of Parquet parts, `x.parquet/part-*.parquet`
(docs/scale-out.md), and so does a DuckDB increment of a deduplicated table
(cdp.io.parts). Every reader goes through `scan` (DuckDB SQL) or `read_table`
(Arrow), which take either.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def parquet_files(path: Path) -> str:
    """The glob of a dataset's files: the file itself, or the parts in its folder."""
    path = Path(path)
    return str(path / "*.parquet") if path.is_dir() else str(path)


def scan(path: Path, **options: str) -> str:
    """DuckDB SQL reading a dataset: read_parquet('<file or parts>', ...). A folder's
    name is never read as a hive partition (`run=<id>.parquet` is a file name)."""
    args = "".join(f", {k} = {v}" for k, v in options.items())
    hive = ", hive_partitioning = false" if Path(path).is_dir() else ""
    return f"read_parquet('{parquet_files(path)}'{hive}{args})"


def folder_scan(folder: Path, **options: str) -> str:
    """DuckDB SQL reading every dataset in a folder of datasets (one per run), files and
    folders of parts alike, matched by column name."""
    folder = Path(folder)
    globs = []
    if any(p.is_file() for p in folder.glob("*.parquet")):
        globs.append(str(folder / "*.parquet"))
    if any(p.is_dir() for p in folder.glob("*.parquet")):
        globs.append(str(folder / "*.parquet" / "*.parquet"))
    listed = ", ".join(f"'{g}'" for g in globs)
    args = "".join(f", {k} = {v}" for k, v in options.items())
    return f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false{args})"


def exists(path: Path) -> bool:
    return Path(path).exists()


def read_table(path: Path, **kwargs):
    """A dataset as one Arrow table (a folder of parts read as one)."""
    # pyarrow is imported here: `cdp profile` reads through scan() and must stay light.
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
        tables = [pq.read_table(f, **kwargs) for f in files]
        return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    return pq.read_table(path, **kwargs)


def settle_layout(lake_dirs: list[Path], engine: str) -> list[Path]:
    """Before DuckDB writes models where Spark wrote them: DuckDB writes a file where a
    folder of parts stands only after that folder is gone. Models are rebuilt, so their
    folders go; a history kept one dataset per run (segment_membership_history) is kept,
    each Spark folder rewritten as the one file DuckDB would have written. Returns the
    paths changed. Spark needs nothing: it replaces a file by a folder itself."""
    if engine != "duckdb":
        return []
    from cdp.io.atomic import write_parquet
    from cdp.io.parts import is_parted

    changed = []
    for root in lake_dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.parquet"), reverse=True):
            if not path.is_dir() or is_parted(path):  # DuckDB's own parts stay
                continue
            if path.parent.name.endswith("_history"):
                table = read_table(path)
                shutil.rmtree(path)
                write_parquet(path, table)
            else:
                shutil.rmtree(path)
            changed.append(path)
    return changed
