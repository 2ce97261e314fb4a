"""The profile store: one DuckDB file, written at the end of a run, for lookups by email,
phone, unified id or name that answer in milliseconds at a million customers.

It is a serving copy of the marts (the lake stays the store of record): per person the
customer_360 row, contact points with their sources, consents as exports apply them,
recent orders, service cases and engagement, segments and source records, each table
indexed on the unified id, plus one lookup table indexed on its key (and segment
members sorted and indexed by segment, for `cdp serve`'s paginated member lists). It is written
beside the old one and renamed over it, so a reader (the CLI, the agent console) always
sees one complete run, never half a person, and a run in progress never blocks it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cdp.io import lake
from cdp.workspace import Workspace

RECENT = 10  # orders, cases and engagement events kept per person


def store_path(lake_dir: Path) -> Path:
    return lake_dir / "serving" / "profiles.duckdb"


def _parquet(path: Path) -> str | None:
    return lake.scan(path) if path.exists() else None


def build_profile_store(ws: Workspace) -> dict[str, int]:
    """Write the store from the lake; returns the row count of each table."""
    import duckdb

    from cdp.config.settings import load_settings
    from cdp.io.atomic import TMP_PREFIX

    marts, identity = ws.marts_dir, ws.identity_dir
    target = store_path(ws.lake_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TMP_PREFIX}{target.name}")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config={"memory_limit": "2GB"})
    counts: dict[str, int] = {}

    def table(name: str, sql: str | None, index: str | None = "unified_individual_id") -> None:
        if sql is None:
            return
        con.execute(f"create table {name} as {sql}")
        if index:
            con.execute(f"create index {name}_idx on {name} ({index})")
        counts[name] = con.execute(f"select count(*) from {name}").fetchone()[0]

    not_empty = "where unified_individual_id is not null"  # dbt's empty-model row
    c360 = _parquet(marts / "customer_360.parquet")
    if c360 is None:
        con.close()
        tmp.unlink(missing_ok=True)
        return {}
    table("customer", f"select * from {c360} {not_empty}")
    links = _parquet(identity / "unified_link_individual.parquet")
    table(
        "records",
        links
        and f"""
        select l.unified_individual_id, l.source_name, l.source_record_id, l.record_kind,
            l.linked_by, l.match_probability
        from {links} l {not_empty} order by 1, 2, 3
        """,
    )
    table("contact_point", _contact_points(ws))
    consent = _parquet(marts / "individual_consent.parquet")
    table("consent", consent and f"select * from {consent} {not_empty}")
    segments = _parquet(marts / "segment_membership.parquet")
    # Sorted by segment, so a page of one segment's members (the API's
    # /api/segments/{name}/members) reads the row groups of that segment only.
    table(
        "segment",
        segments
        and f"select * from {segments} {not_empty} order by segment_name, unified_individual_id",
    )
    if "segment" in counts:
        con.execute("create index segment_name_idx on segment (segment_name)")
    table("recent_order", _recent(marts / "int_sales_orders_attributed.parquet", "order_ts"))
    table("service_case", _recent(marts / "int_service_cases_attributed.parquet", "opened_ts"))
    table(
        "engagement",
        _recent(marts / "int_engagement_emails_attributed.parquet", "event_ts"),
    )
    table("lookup", _lookup(ws, con), index="key")
    region = load_settings(ws.settings_file).default_region
    con.execute("create table meta as select ? as default_region", [region])
    con.close()
    os.replace(tmp, target)
    return counts


def _recent(path: Path, ts: str) -> str | None:
    if not path.exists():
        return None
    return f"""
        select * from {lake.scan(path)}
        where unified_individual_id is not null
        qualify row_number() over (
            partition by unified_individual_id order by {ts} desc nulls last, source_record_id
        ) <= {RECENT}
    """


def _contact_points(ws: Workspace) -> str | None:
    ranked = ws.marts_dir / "unified_contact_point.parquet"
    if ranked.exists():
        return f"select * from {lake.scan(ranked)} where unified_individual_id is not null"
    # Without the ranked mart: every email and phone of the person's records.
    links = ws.identity_dir / "unified_link_individual.parquet"
    emails = ws.harmonised_dir / "int_contact_point_emails_deduplicated.parquet"
    phones = ws.harmonised_dir / "int_contact_point_phones_deduplicated.parquet"
    if not (links.exists() and emails.exists() and phones.exists()):
        return None
    return f"""
        with l as (select * from {lake.scan(links)} where record_kind = 'person')
        select l.unified_individual_id, 'email' as channel, e.email_address as contact_value,
            null::integer as contact_rank,
            list(distinct e.source_name order by e.source_name) as sources
        from l join {lake.scan(emails)} e using (source_name, source_record_id)
        group by all
        union all
        select l.unified_individual_id, 'phone', p.phone_e164, null::integer,
            list(distinct p.source_name order by p.source_name)
        from l join {lake.scan(phones)} p using (source_name, source_record_id)
        where p.phone_e164 is not null group by all
    """


def _lookup(ws: Workspace, con) -> str:
    """key -> unified id: emails (as given and as mailbox key), E.164 phones, unified
    ids, and folded names (`first last`, with the postal code to narrow them down)."""
    parts = [
        "select unified_individual_id as key, 'id' as kind, unified_individual_id, "
        "null::varchar as postal_code from customer"
    ]
    has = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    if "contact_point" in has:
        cols = {r[0] for r in con.execute("describe contact_point").fetchall()}
        parts.append(
            "select lower(contact_value) as key, channel as kind, unified_individual_id, "
            "null from contact_point where channel in ('email', 'phone') and contact_value is not null"
        )
        if "match_key" in cols:
            parts.append(
                "select match_key, channel, unified_individual_id, null from contact_point "
                "where channel in ('email', 'phone') and match_key is not null"
            )
    customer = {r[0] for r in con.execute("describe customer").fetchall()}
    if {"first_name", "last_name"} <= customer:
        postal = "upper(replace(postal_code, ' ', ''))" if "postal_code" in customer else "null"
        parts.append(
            f"select cdp_name_key(first_name, last_name), 'name', unified_individual_id, "
            f"{postal} from customer where first_name is not null and last_name is not null"
        )
    from cdp.harmonise.text import fold

    def name_key(first: str | None, last: str | None) -> str | None:
        f, la = fold(first), fold(last)
        return f"{f} {la}" if f and la else None

    con.create_function("cdp_name_key", name_key, ["VARCHAR", "VARCHAR"], "VARCHAR")
    return "select distinct * from (" + " union all ".join(parts) + ") where key is not null"
