"""The file manifest and the data-quality table of a source, in `lake/_meta/`.

Rows are keyed by load id, so writing the rows of a load again (after a killed run)
replaces them instead of adding duplicates.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

MANIFEST_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("sha256", pa.string()),
        ("loaded_at", pa.timestamp("us", tz="UTC")),
        ("rows_in", pa.int64()),
        ("rows_kept", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("status", pa.string()),  # loaded | empty | failed
        ("message", pa.string()),
        ("columns", pa.list_(pa.string())),
    ]
)

DQ_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("source_file", pa.string()),
        ("field", pa.string()),
        ("check", pa.string()),
        ("failures", pa.int64()),
        ("example_row_numbers", pa.list_(pa.int64())),
    ]
)


def manifest_path(ws: Workspace, source: str) -> Path:
    return ws.meta_dir / "manifest" / f"{source}.parquet"


def dq_path(ws: Workspace, source: str) -> Path:
    return ws.meta_dir / "dq" / f"{source}.parquet"


def read_manifest(ws: Workspace, source: str) -> pa.Table:
    path = manifest_path(ws, source)
    if not path.exists():
        return MANIFEST_SCHEMA.empty_table()
    return pq.read_table(path, schema=MANIFEST_SCHEMA)


def _upsert(path: Path, schema: pa.Schema, rows: list[dict], load_id: str) -> None:
    old = pq.read_table(path, schema=schema) if path.exists() else schema.empty_table()
    keep = [r for r in old.to_pylist() if r["load_id"] != load_id]
    write_parquet(path, pa.Table.from_pylist(keep + rows, schema=schema))


def record_load(ws: Workspace, source: str, entry: dict, dq_rows: list[dict]) -> None:
    """Write the DQ rows, then the manifest entry: the manifest is the commit point."""
    if dq_rows or dq_path(ws, source).exists():
        _upsert(dq_path(ws, source), DQ_SCHEMA, dq_rows, entry["load_id"])
    _upsert(manifest_path(ws, source), MANIFEST_SCHEMA, [entry], entry["load_id"])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def next_load_id(manifest: pa.Table) -> str:
    ids = [int(x) for x in manifest.column("load_id").to_pylist()] if manifest.num_rows else []
    return f"{max(ids, default=0) + 1:06d}"
