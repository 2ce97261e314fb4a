"""Rich output for the CLI: run summaries, query results and profiles."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from cdp.io import lake
from cdp.workspace import Workspace


def _count(path_glob: str) -> int:
    try:
        source = (
            lake.scan(Path(path_glob)) if "*" not in path_glob else f"read_parquet('{path_glob}')"
        )
        return duckdb.execute(f"select count(*) from {source}").fetchone()[0]
    except duckdb.Error:
        return 0


def lake_summary(ws: Workspace) -> dict:
    """Totals read back from the lake (not from this run only, which may load nothing)."""
    sources = {}
    if ws.raw_dir.is_dir():
        for d in sorted(
            p for p in ws.raw_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            q = ws.quarantine_dir / d.name
            sources[d.name] = (
                _count(f"{d}/*/*.parquet"),
                _count(f"{q}/*/*.parquet") if q.is_dir() and any(q.glob("*/*.parquet")) else 0,
            )
    profiles = _count(str(ws.marts_dir / "unified_individual.parquet"))
    records = _count(str(ws.identity_dir / "unified_link_individual.parquet"))
    segments: dict[str, int] = {}
    membership = ws.marts_dir / "segment_membership.parquet"
    if membership.exists():
        segments = dict(
            duckdb.execute(
                f"select segment_name, count(*) from {lake.scan(membership)} group by 1 order by 1"
            ).fetchall()
        )
    return {"sources": sources, "profiles": profiles, "records": records, "segments": segments}


def print_run_summary(console: Console, ws: Workspace, outcome, seconds: float) -> None:
    summary = lake_summary(ws)
    table = Table(title="rows per source (lake totals)", title_justify="left")
    table.add_column("source")
    table.add_column("rows kept", justify="right")
    table.add_column("quarantined", justify="right")
    for name, (kept, quarantined) in summary["sources"].items():
        table.add_row(name, f"{kept:,}", f"{quarantined:,}")
    console.print(table)
    console.print(
        f"unified profiles: [bold]{summary['profiles']:,}[/] "
        f"(from {summary['records']:,} person records and linked visitors)"
    )
    identity = outcome.materializations.get("unified_link_individual", {})
    rules = identity.get("match_rules") or []
    if rules:
        linked = ", ".join(f"{r['rule']} {r['records_linked']:,}" for r in rules)
        console.print(f"match rules, records linked: {linked}", soft_wrap=True)
    for left in identity.get("blocking_left_out") or []:
        console.print(
            f"[yellow]blocking:[/] {left['values']:,} value(s) of [{left['rule']}] shared by more "
            f"than {left['cap']:,} records left out of that rule ({left['records']:,} records)",
            soft_wrap=True,
        )
    for name, size in summary["segments"].items():
        console.print(f"segment [bold]{name}[/]: {size:,} members")
    for key, meta in sorted(outcome.materializations.items()):
        if key.startswith("activation/") and "path" in meta:
            console.print(
                f"export [bold]{key.split('/', 1)[1]}[/]: {meta.get('rows', 0):,} rows -> {meta['path']}",
                soft_wrap=True,
            )
    for check in outcome.failed_checks:
        console.print(f"[yellow]check failed:[/] {check}")
    console.print(f"run {outcome.run_id} finished in {seconds:.1f}s")


def _plain(v):
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    return v


def print_query(console: Console, cur: duckdb.DuckDBPyConnection, fmt: str, limit: int) -> None:
    cols = [d[0] for d in cur.description]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(cols)
        while batch := cur.fetchmany(10_000):
            writer.writerows(batch)
        return
    if fmt == "json":
        rows = [dict(zip(cols, map(_plain, r), strict=True)) for r in cur.fetchall()]
        sys.stdout.write(json.dumps(rows, default=str, indent=1) + "\n")
        return
    rows = cur.fetchmany(limit + 1)
    table = Table(*cols)
    for r in rows[:limit]:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
    more = " (more not shown; use --limit or --format csv)" if len(rows) > limit else ""
    console.print(f"[dim]{min(len(rows), limit)} row(s){more}[/]")
