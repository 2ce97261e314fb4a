"""One person's 360 view, looked up by email, phone or unified id, through the catalog."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import phonenumbers

from cdp.catalog import connect_catalog
from cdp.config.settings import load_settings
from cdp.errors import CdpError
from cdp.workspace import Workspace

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass
class Profile:
    unified_individual_id: str
    summary: dict
    records: list[dict] = field(default_factory=list)
    emails: list[dict] = field(default_factory=list)
    phones: list[dict] = field(default_factory=list)
    addresses: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    consents: list[dict] = field(default_factory=list)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _has(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_name = ?", [view]
        ).fetchone()[0]
    )


def find_unified_ids(ws: Workspace, con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    query = query.strip()
    if EMAIL_RE.match(query):
        return [
            r[0]
            for r in con.execute(
                """
                select distinct l.unified_individual_id
                from int_contact_point_emails_deduplicated e
                join unified_link_individual l using (source_name, source_record_id)
                where e.email_address = lower(?) order by 1
                """,
                [query],
            ).fetchall()
        ]
    if re.fullmatch(r"[+()\d\s.\-]{6,}", query):
        region = load_settings(ws.settings_file).default_region
        try:
            number = phonenumbers.parse(query, region)
        except phonenumbers.NumberParseException:
            raise CdpError(f"{query!r} is not a phone number I can read") from None
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return [
            r[0]
            for r in con.execute(
                """
                select distinct l.unified_individual_id
                from int_contact_point_phones_deduplicated p
                join unified_link_individual l using (source_name, source_record_id)
                where p.phone_e164 = ? order by 1
                """,
                [e164],
            ).fetchall()
        ]
    hit = con.execute(
        "select 1 from customer_360 where unified_individual_id = ?", [query]
    ).fetchall()
    return [query] if hit else []


def lookup_profile(ws: Workspace, query: str) -> list[Profile]:
    """Every person matching the query (an email or phone can belong to several)."""
    con = connect_catalog(ws)
    try:
        for view in ("customer_360", "unified_link_individual"):
            if not _has(con, view):
                raise CdpError(f"the catalog has no {view} yet: run `cdp run` first")
        return [_load(con, uid) for uid in find_unified_ids(ws, con, query)]
    finally:
        con.close()


def _load(con: duckdb.DuckDBPyConnection, uid: str) -> Profile:
    summary = _rows(con, "select * from customer_360 where unified_individual_id = ?", [uid])[0]
    p = Profile(unified_individual_id=uid, summary=summary)
    p.records = _rows(
        con,
        """
        select l.source_name, l.source_record_id, l.linked_by, l.match_probability,
               i.first_name, i.last_name, i.birth_date, i.updated_ts
        from unified_link_individual l
        left join int_individuals_deduplicated i using (source_name, source_record_id)
        where l.unified_individual_id = ? order by l.source_name, l.source_record_id
        """,
        [uid],
    )
    links = "(select source_name, source_record_id from unified_link_individual where unified_individual_id = ?)"
    p.emails = _rows(
        con,
        f"select distinct email_address, is_valid from int_contact_point_emails_deduplicated "
        f"where (source_name, source_record_id) in {links} order by 1",
        [uid],
    )
    p.phones = _rows(
        con,
        f"select distinct phone_e164, is_valid from int_contact_point_phones_deduplicated "
        f"where (source_name, source_record_id) in {links} order by 1",
        [uid],
    )
    p.addresses = _rows(
        con,
        f"select distinct address_line1, city, postal_code, region, country "
        f"from int_contact_point_addresses_deduplicated "
        f"where (source_name, source_record_id) in {links} order by 1",
        [uid],
    )
    if _has(con, "int_sales_orders_deduplicated"):
        p.orders = _rows(
            con,
            f"select order_id, order_ts, status, amount, currency from int_sales_orders_deduplicated "
            f"where (individual_source_name, individual_source_record_id) in {links} "
            f"order by order_ts desc nulls last limit 10",
            [uid],
        )
    if _has(con, "segment_membership"):
        p.segments = [
            r["segment_name"]
            for r in _rows(
                con,
                "select segment_name from segment_membership where unified_individual_id = ? order by 1",
                [uid],
            )
        ]
    if _has(con, "individual_consent"):
        # The one consent rule (dbt model individual_consent), as exports apply it.
        p.consents = _rows(
            con,
            """
            select purpose, channel, status, captured_ts, decided_by
            from individual_consent where unified_individual_id = ? order by purpose, channel
            """,
            [uid],
        )
    return p
