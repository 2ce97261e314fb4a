"""`cdp explain`: why the records of a unified individual were merged, and who was kept out."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cdp.errors import CdpError
from cdp.io import lake
from cdp.workspace import Workspace


@dataclass
class Explanation:
    unified_individual_id: str
    records: list[dict]
    edges: list[dict]
    near_misses: list[dict] = field(default_factory=list)


def _rows(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def explain(ws: Workspace, unified_id: str) -> Explanation:
    d = ws.identity_dir
    link = d / "unified_link_individual.parquet"
    if not link.exists():
        raise CdpError("no identity resolution output yet: run `cdp run` first")
    con = duckdb.connect()
    con.execute(f"create view links as select * from {lake.scan(link)}")
    con.execute(f"create view edges as select * from {lake.scan(d / 'identity_edges.parquet')}")
    con.execute(
        f"create view near as select * from {lake.scan(d / 'identity_near_misses.parquet')}"
    )
    ind = ws.harmonised_dir / "int_person_records_prepared.parquet"
    con.execute(f"create view ind as select * from {lake.scan(ind)}")
    records = _rows(
        con,
        """
        select l.source_name, l.source_record_id, l.linked_by, l.match_probability,
               i.first_name, i.last_name, i.birth_date
        from links l left join ind i using (source_name, source_record_id)
        where l.unified_individual_id = ? order by l.record_kind desc, l.source_name, l.source_record_id
        """,
        [unified_id],
    )
    if not records:
        raise CdpError(
            f"no unified individual {unified_id!r}: look ids up with `cdp profile <email>`"
        )
    edges = _rows(
        con,
        "select * from edges where unified_individual_id = ? order by match_probability desc",
        [unified_id],
    )
    near = _rows(
        con,
        "select * from near where cluster_l = ? or cluster_r = ? order by match_probability desc limit 10",
        [unified_id, unified_id],
    )
    return Explanation(unified_id, records, edges, near)


def _waterfall(edge: dict) -> Table:
    """Each comparison's match weight as a signed bar: what agreed, what disagreed, how much."""
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("comparison")
    t.add_column("weight", justify="right")
    t.add_column("")
    mws = {k[3:]: v for k, v in edge.items() if k.startswith("mw_") and v is not None}
    running = 0.0
    for name, w in mws.items():
        running += w
        bar = ("█" * min(int(abs(w) * 2), 30)) or "·"
        style = "green" if w > 0 else "red" if w < 0 else "dim"
        t.add_row(name, f"{w:+.2f}", Text(bar, style=style))
    if edge.get("match_weight") is not None:
        t.add_row(
            "total (with prior)",
            f"{edge['match_weight']:+.2f}",
            Text(f"p = {edge['match_probability']:.6f}"),
        )
    if edge.get("household"):
        t.add_row(
            "one household",
            "",
            Text(
                "surname and home agree: scored on personal details alone "
                "(identity.household_prior)",
                style="dim",
            ),
        )
    return t


def render_explanation(ex: Explanation):
    parts = []
    rec = Table(
        title=f"{ex.unified_individual_id}: {len(ex.records)} record(s)", title_justify="left"
    )
    for c in (
        "source_name",
        "source_record_id",
        "first_name",
        "last_name",
        "birth_date",
        "linked_by",
    ):
        rec.add_column(c)
    for r in ex.records:
        rec.add_row(
            *(
                str(r.get(c) or "")
                for c in (
                    "source_name",
                    "source_record_id",
                    "first_name",
                    "last_name",
                    "birth_date",
                    "linked_by",
                )
            )
        )
    parts.append(rec)
    for e in ex.edges:
        head = Text(f"\n{e['unique_id_l']}  ⟷  {e['unique_id_r']}   [{e['stage']}]", style="bold")
        parts.append(head)
        if e["stage"].startswith("deterministic"):
            parts.append(Text(f"  shared strong identifier ({e['stage'].split(':', 1)[1]})"))
        else:
            parts.append(_waterfall(e))
    if ex.near_misses:
        parts.append(
            Text(
                "\nNear misses kept out (below the match threshold, or refused by a cluster guard):",
                style="bold yellow",
            )
        )
        for e in ex.near_misses:
            other = (
                e["unique_id_r"] if e["cluster_l"] == ex.unified_individual_id else e["unique_id_l"]
            )
            parts.append(
                Text(
                    f"\n{other} (in {e['cluster_r'] if other == e['unique_id_r'] else e['cluster_l']})",
                    style="yellow",
                )
            )
            parts.append(_waterfall(e))
    else:
        parts.append(Text("\nNo near misses: no other record came close.", style="dim"))
    return Group(*parts)
