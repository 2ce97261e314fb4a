"""catalog.duckdb: named views over the lake, rebuilt atomically, opened read-only.

The catalog holds no data, only views, so it can be rebuilt in a second after every
run, and a reader (`cdp sql`, a notebook) never blocks a run or is blocked by one.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from cdp.io.atomic import TMP_PREFIX, atomic_path
from cdp.sandbox import connect_sandboxed
from cdp.workspace import Workspace

_IDENT = re.compile(r"[^a-z0-9_]")


def _view_name(name: str) -> str:
    return _IDENT.sub("_", name.lower())


def catalog_views(ws: Workspace) -> dict[str, str]:
    """View name -> SQL, for every dataset that exists in the lake now."""
    views: dict[str, str] = {}

    def glob_view(name: str, directory: Path, pattern: str = "*/*.parquet") -> None:
        if directory.is_dir() and any(directory.glob(pattern)):
            views[_view_name(name)] = (
                f"select * from read_parquet('{directory}/{pattern}', union_by_name = true)"
            )

    # A folder or file named .tmp-… is a write in progress, or one a killed run left.
    if ws.raw_dir.is_dir():
        for d in sorted(p for p in ws.raw_dir.iterdir() if p.is_dir() and not _hidden(p)):
            glob_view(f"raw_{d.name}", d)
    if ws.quarantine_dir.is_dir():
        for d in sorted(p for p in ws.quarantine_dir.iterdir() if p.is_dir() and not _hidden(p)):
            glob_view(f"quarantine_{d.name}", d)
    for sub, name in (("manifest", "ingest_manifest"), ("dq", "ingest_data_quality")):
        glob_view(name, ws.meta_dir / sub, "*.parquet")
    for directory in (ws.harmonised_dir, ws.identity_dir, ws.marts_dir):
        if directory.is_dir():
            for f in sorted(directory.glob("*.parquet")):
                if _hidden(f) or "." in f.stem:  # temporary, or pending (x.pending.parquet)
                    continue
                views[_view_name(f.stem)] = (
                    f"select * from read_parquet('{f}'){_placeholder_filter(f)}"
                )
    # Marts written as a folder of files: one file per run (segment history), one per
    # activation (audiences).
    history = ws.marts_dir / "segment_membership_history"
    if history.is_dir() and any(history.glob("*.parquet")):
        views["segment_membership_history"] = (
            f"select * from read_parquet('{history}/*.parquet', union_by_name = true) "
            "where unified_individual_id is not null"
        )
    for f in sorted((ws.marts_dir / "audiences").glob("*.parquet")):
        views[_view_name(f"audience_{f.stem}")] = (
            f"select * from read_parquet('{f}'){_placeholder_filter(f)}"
        )
    return views


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", TMP_PREFIX))


def _placeholder_filter(path: Path) -> str:
    """dbt-duckdb writes an empty external model as one all-null row; hide that row."""
    cols = {
        r[0]
        for r in duckdb.connect()
        .execute(f"describe select * from read_parquet('{path}')")
        .fetchall()
    }
    # (the first key column the dataset has; a mart keyed otherwise names its own key)
    for key in (
        "source_name",
        "anonymous_id",
        "key_value",
        "product_sku",
        "campaign",
        "object_name",
        "unified_individual_id",
    ):
        if key in cols:
            return f" where {key} is not null"
    return ""


def rebuild_catalog(ws: Workspace) -> list[str]:
    """Write a fresh catalog beside the old one and swap it in. Returns the view names."""
    views = catalog_views(ws)
    with atomic_path(ws.catalog_file) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            for name, sql in views.items():
                con.execute(f'create or replace view "{name}" as {sql}')
        finally:
            con.close()
    return sorted(views)


def connect_catalog(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A read-only, sandboxed connection to the catalog (cdp.sandbox): it reads the lake
    and nothing else. A clear error if the pipeline never ran."""
    return connect_sandboxed(ws)
