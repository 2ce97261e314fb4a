"""catalog.duckdb: named views over the lake, rebuilt atomically, opened read-only.

The catalog holds no data, only views, so it can be rebuilt in a second after every
run, and a reader (`cdp sql`, a notebook) never blocks a run or is blocked by one.

Every canonical object is a view under its own name (`individual`, `sales_order`, ...)
beside its dbt model's name (`int_individuals_deduplicated`). `quarantine_<source>` (one
per declared source), `ingest_manifest` and `ingest_data_quality` always exist, typed and
empty when nothing was set aside.

The views hold paths relative to the workspace: each is read under the DuckDB variable
`cdp_workspace`, which connect_catalog sets, else under the working directory. A moved
or copied workspace keeps working, and `duckdb catalog.duckdb` from inside the workspace
folder works too.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.errors import CdpError
from cdp.io.atomic import TMP_PREFIX, atomic_path
from cdp.model.canonical import OBJECTS
from cdp.sandbox import connect_sandboxed
from cdp.workspace import Workspace

_IDENT = re.compile(r"[^a-z0-9_]")
ROOT_VARIABLE = "cdp_workspace"
PARSE_FAILURES = "int_parse_failures"


def _view_name(name: str) -> str:
    return _IDENT.sub("_", name.lower())


def canonical_views() -> dict[str, str]:
    """Canonical object name -> the dbt model holding it (harmonised, latest versions)."""
    from cdp.harmonise.dbt_codegen import deduplicated_model_name

    return {name: deduplicated_model_name(name) for name in OBJECTS}


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path(ws: Workspace, path: Path) -> str:
    """SQL for a lake path, relative to the workspace root held in `cdp_workspace`."""
    rel = path.relative_to(ws.root).as_posix()
    return f"coalesce(getvariable('{ROOT_VARIABLE}'), '.') || {_lit('/' + rel)}"


def _dataset(ws: Workspace, path: Path) -> str:
    """read_parquet of one dataset: DuckDB's one file, or Spark's folder of parts at the
    same path (cdp.io.lake)."""
    if path.is_dir():
        return f"read_parquet({_path(ws, path / '*.parquet')}, hive_partitioning = false)"
    return f"read_parquet({_path(ws, path)})"


_DUCKDB_TYPES = {
    pa.string(): "varchar",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.timestamp("us"): "timestamp",
    pa.list_(pa.string()): "varchar[]",
    pa.list_(pa.int64()): "bigint[]",
}


def _empty(schema: pa.Schema, extra: dict[str, str] | None = None) -> str:
    cols = [f"cast(null as {t}) as {n}" for n, t in (extra or {}).items()]
    cols += [f'cast(null as {_DUCKDB_TYPES[f.type]}) as "{f.name}"' for f in schema]
    return f"select {', '.join(cols)} where false"


def _declared_sources(ws: Workspace) -> list[str]:
    from cdp.config.sources import load_sources

    try:
        return [s.name for s in load_sources(ws.sources_dir)] if ws.sources_dir.is_dir() else []
    except CdpError:
        return []  # `cdp validate` reports it; the catalog shows what is in the lake


def catalog_views(ws: Workspace) -> dict[str, str]:
    """View name -> SQL, for every dataset that exists in the lake now."""
    from cdp.ingest.ingest import QUARANTINE_SCHEMA
    from cdp.ingest.manifest import DQ_SCHEMA, MANIFEST_SCHEMA

    views: dict[str, str] = {}

    def glob_view(name: str, directory: Path, pattern: str = "*/*.parquet") -> bool:
        if directory.is_dir() and any(directory.glob(pattern)):
            views[_view_name(name)] = (
                f"select * from read_parquet({_path(ws, directory / pattern)}, union_by_name = true)"
            )
            return True
        return False

    # A folder or file named .tmp-… is a write in progress, or one a killed run left.
    if ws.raw_dir.is_dir():
        for d in sorted(p for p in ws.raw_dir.iterdir() if p.is_dir() and not _hidden(p)):
            glob_view(f"raw_{d.name}", d)
    quarantined = set(_declared_sources(ws))
    if ws.quarantine_dir.is_dir():
        quarantined |= {
            p.name for p in ws.quarantine_dir.iterdir() if p.is_dir() and not _hidden(p)
        }
    for source in sorted(quarantined):
        if not glob_view(f"quarantine_{source}", ws.quarantine_dir / source):
            views[_view_name(f"quarantine_{source}")] = _empty(QUARANTINE_SCHEMA)
    views["ingest_manifest"] = _meta_view(ws, "manifest", MANIFEST_SCHEMA)
    views["ingest_data_quality"] = _data_quality_view(ws, DQ_SCHEMA)
    for directory in (ws.harmonised_dir, ws.identity_dir, ws.marts_dir):
        if directory.is_dir():
            for f in sorted(directory.glob("*.parquet")):
                if _hidden(f) or "." in f.stem:  # temporary, or pending (x.pending.parquet)
                    continue
                views[_view_name(f.stem)] = (
                    f"select * from {_dataset(ws, f)}{_placeholder_filter(f)}"
                )
    # Marts written as a folder of files: one file per run (segment history), one per
    # activation (audiences).
    history = ws.marts_dir / "segment_membership_history"
    if history.is_dir() and any(history.glob("*.parquet")):
        # one file per run, or (Spark) one folder of parts per run
        globs = [
            _path(ws, history / g)
            for g, kind in (("*.parquet", Path.is_file), ("*.parquet/*.parquet", Path.is_dir))
            if any(kind(p) for p in history.glob("*.parquet"))
        ]
        views["segment_membership_history"] = (
            f"select * from read_parquet([{', '.join(globs)}], union_by_name = true, "
            "hive_partitioning = false) where unified_individual_id is not null"
        )
    for f in sorted((ws.marts_dir / "audiences").glob("*.parquet")):
        views[_view_name(f"audience_{f.stem}")] = (
            f"select * from {_dataset(ws, f)}{_placeholder_filter(f)}"
        )
    for name, model in canonical_views().items():
        if model in views:
            views[name] = f"select * from {model}"
    return views


def _meta_view(ws: Workspace, sub: str, schema: pa.Schema) -> str:
    """A table of ingestion's `_meta/<sub>/<source>.parquet`, with the source named."""
    directory = ws.meta_dir / sub
    if not (directory.is_dir() and any(directory.glob("*.parquet"))):
        return _empty(schema, {"source_name": "varchar"})
    return (
        "select regexp_extract(filename, '([^/\\\\]+)\\.parquet$', 1) as source_name, "
        "* exclude (filename) from read_parquet("
        f"{_path(ws, directory / '*.parquet')}, union_by_name = true, filename = true)"
    )


def _data_quality_view(ws: Workspace, schema: pa.Schema) -> str:
    """Ingestion's counts (values that did not parse, duplicate keys, bad bytes) and the
    mapping's (int_parse_failures: formats, value maps, ...), per source and field."""
    cols = 'source_name, load_id, source_file, field, "check", failures, example_row_numbers'
    parts = [f"select 'ingestion' as stage, {cols} from ({_meta_view(ws, 'dq', schema)})"]
    failures = ws.harmonised_dir / f"{PARSE_FAILURES}.parquet"
    if failures.exists():
        parts.append(
            f"select 'mapping' as stage, {cols} from {_dataset(ws, failures)} "
            "where source_name is not null"
        )
    return " union all ".join(parts)


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", TMP_PREFIX))


def _placeholder_filter(path: Path) -> str:
    """dbt-duckdb writes an empty external model as one all-null row; hide that row."""
    # The footer's column names (pyarrow): a DuckDB per file cost about 20 ms each, 2 s a run.
    first = path if path.is_file() else next(iter(sorted(path.glob("*.parquet"))), None)
    cols = set(pq.read_schema(first).names) if first else set()
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


def set_workspace(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Point the catalog's relative paths at this workspace."""
    con.execute(f"set variable {ROOT_VARIABLE} = {_lit(str(ws.root))}")


def rebuild_catalog(ws: Workspace) -> list[str]:
    """Write a fresh catalog beside the old one and swap it in. Returns the view names."""
    views = catalog_views(ws)
    with atomic_path(ws.catalog_file) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            set_workspace(con, ws)
            for name, sql in views.items():
                con.execute(f'create or replace view "{name}" as {sql}')
        finally:
            con.close()
    return sorted(views)


def connect_catalog(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A read-only, sandboxed connection to the catalog (cdp.sandbox): it reads the lake
    and nothing else. A clear error if the pipeline never ran."""
    return connect_sandboxed(ws)
