"""Drop raw loads that a newer load supersedes, once they are old enough
(`retention.raw_load_days` in cdp.yml).

A load is superseded when nothing downstream reads it any more:
- in a snapshot source, every load but the newest that holds rows (each file is a full
  extract);
- in an append source, an older version of a file that landed again changed.
Its raw and quarantine folders are deleted; its manifest entry stays, so the file is
not loaded again, with a note that its rows have expired.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from cdp.config.sources import SourceSpec
from cdp.ingest.manifest import manifest_path, read_manifest
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

EXPIRED = "expired"


def superseded_loads(ws: Workspace, spec: SourceSpec) -> list[dict]:
    rows = [r for r in read_manifest(ws, spec.name).to_pylist() if r["status"] != EXPIRED]
    with_rows = [r for r in rows if (r["rows_kept"] or 0) > 0]
    if spec.mode == "snapshot":
        newest = max((r["load_id"] for r in with_rows), default=None)
        return [r for r in with_rows if r["load_id"] != newest]
    latest: dict[str, str] = {}
    for r in rows:
        latest[r["path"]] = max(latest.get(r["path"], ""), r["load_id"])
    return [r for r in with_rows if r["load_id"] != latest[r["path"]]]


def expire_raw_loads(
    ws: Workspace, spec: SourceSpec, days: int, now: datetime | None = None
) -> list[str]:
    """Delete the superseded loads older than `days`; returns their load ids."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    expired = [
        r["load_id"]
        for r in superseded_loads(ws, spec)
        if r["loaded_at"] is not None and r["loaded_at"] <= cutoff
    ]
    if not expired:
        return []
    for load_id in expired:
        for root in (ws.raw_dir, ws.quarantine_dir):
            shutil.rmtree(root / spec.name / f"load_id={load_id}", ignore_errors=True)
    manifest = read_manifest(ws, spec.name)
    rows = manifest.to_pylist()
    for r in rows:
        if r["load_id"] in expired:
            r["status"] = EXPIRED
            r["message"] = f"rows deleted by retention.raw_load_days ({days})"
    write_parquet(manifest_path(ws, spec.name), pa.Table.from_pylist(rows, schema=manifest.schema))
    return expired
