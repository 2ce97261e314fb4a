"""Rich output for the CLI: run summaries, query results and profiles."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
                # (no member at all: dbt writes one all-null row, not a segment)
                f"select segment_name, count(*) from {lake.scan(membership)} "
                "where segment_name is not null group by 1 order by 1"
            ).fetchall()
        )
    return {"sources": sources, "profiles": profiles, "records": records, "segments": segments}


def print_run_summary(console: Console, ws: Workspace, outcome, seconds: float) -> None:
    summary = lake_summary(ws)
    table = Table(box=None, pad_edge=False, title_justify="left", show_edge=False)
    table.add_column("source (lake totals)")
    table.add_column("rows kept", justify="right")
    table.add_column("quarantined", justify="right")
    for name, (kept, quarantined) in summary["sources"].items():
        table.add_row(name, f"{kept:,}", f"{quarantined:,}" if quarantined else "")
    console.print(table)
    identity = outcome.materializations.get("unified_link_individual", {})
    console.print(
        f"unified profiles: [bold]{summary['profiles']:,}[/] "
        f"(from {summary['records']:,} person records and linked visitors)"
        + (f"; identity {identity['mode']}" if identity.get("mode") else "")
    )
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
    if summary["segments"]:
        sizes = "  ".join(f"{name} {size:,}" for name, size in summary["segments"].items())
        console.print(f"segments: {sizes}", soft_wrap=True)
    for key, meta in sorted(outcome.materializations.items()):
        if key.startswith("activation/") and "path" in meta:
            delta = (
                f" (+{meta['added']:,} / -{meta['removed']:,})"
                if meta.get("added") is not None
                else ""
            )
            path = str(meta["path"]).removeprefix(f"{ws.root}/")
            console.print(
                f"export [bold]{key.split('/', 1)[1]}[/]: {meta.get('rows', 0):,} rows{delta} -> {path}",
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


# A column holding an id: "id" is one of its words (unified_individual_id, source_record_id,
# unique_id_l, run_id). Ids are never cut: they are copied into the next query.
_ID_COLUMN = re.compile(r"(^|_)id(_|$)")
QUERY_FORMATS = ("table", "vertical", "csv", "json")


def is_id_column(name: str) -> bool:
    return bool(_ID_COLUMN.search(name.lower()))


def _cell(v) -> str:
    return "" if v is None else str(v)


def print_query(console: Console, cur: duckdb.DuckDBPyConnection, fmt: str, limit: int) -> None:
    """`cdp sql` output. `table` is a table when it fits the terminal with every id whole
    and no word broken (longer values wrap onto more lines), else the `vertical` form: one
    block per row, one line per column, as psql's \\x."""
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
    shown, more = rows[:limit], len(rows) > limit
    table = _table(cols, shown)
    needed = table_width(console, table)
    note = ""
    if fmt == "table" and needed <= console.width:
        console.print(table)
    else:
        if fmt == "table":
            note = (
                f"; shown vertically: as a table it needs {needed} columns, "
                f"the terminal has {console.width}"
            )
        _print_vertical(console, cols, shown)
    tail = " (more not shown; use --limit or --format csv)" if more else ""
    console.print(f"[dim]{len(shown)} row(s){tail}{note}[/]", soft_wrap=True)


def table_width(console: Console, table: Table) -> int:
    """The narrowest the table can be printed: ids whole, other columns down to their
    longest word (header included)."""
    return console.measure(table, options=console.options.update_width(100_000)).minimum


def _table(cols: list[str], rows: list[tuple]) -> Table:
    table = Table()
    for i, col in enumerate(cols):
        values = [r[i] for r in rows if r[i] is not None]
        numeric = bool(values) and all(
            isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values
        )
        justify = "right" if numeric else "left"
        if is_id_column(col):
            width = max([cell_len(col), *(cell_len(_cell(v)) for v in values)])
            table.add_column(col, no_wrap=True, min_width=width, justify=justify)
        else:
            table.add_column(col, overflow="fold", justify=justify)
    for r in rows:
        table.add_row(*(Text(_cell(v)) for v in r))
    return table


def _print_vertical(console: Console, cols: list[str], rows: list[tuple]) -> None:
    """One block per row: `column | value`, values whole (the terminal wraps them)."""
    width = max((cell_len(c) for c in cols), default=0)
    for n, r in enumerate(rows, 1):
        console.print(Text(f"-[ row {n} ]" + "-" * max(4, width - 6), style="dim"), soft_wrap=True)
        for col, v in zip(cols, r, strict=True):
            lines = _cell(v).split("\n")
            console.print(Text(f"{col:<{width}} | {lines[0]}"), soft_wrap=True, highlight=False)
            for more in lines[1:]:
                console.print(Text(f"{'':<{width}} | {more}"), soft_wrap=True, highlight=False)
