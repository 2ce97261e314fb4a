"""One person's 360 view, looked up by email, phone, unified id or name.

Reads the profile store (cdp.serving.profile_store): one file written whole at the end
of a run, indexed for point lookups, so an answer takes milliseconds and a run in
progress can never show half a person. Only duckdb and phonenumbers are imported:
the command starts fast (never Splink, Dagster or dbt).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from cdp.errors import CdpError
from cdp.workspace import Workspace

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
PHONE_RE = re.compile(r"^[+()\d\s.\-/]{6,}$")


def open_store(ws: Workspace):
    import duckdb

    from cdp.serving.profile_store import store_path

    path = store_path(ws.lake_dir)
    if not path.exists():
        raise CdpError(f"no profile store in {ws.root}: run `cdp run` first")
    # Attached to a fresh connection rather than opened: DuckDB shares one instance per
    # open path in a process, which would keep a long-lived reader (the console) on the
    # snapshot it first opened. Attaching reads the file the path names now.
    con = duckdb.connect()
    con.execute(f"attach '{path}' as store (read_only)")
    con.execute("use store")
    from cdp.serving.profile_store import FORMAT

    found = con.execute(
        "select count(*) from duckdb_columns() where table_name = 'meta' and column_name = 'format'"
    ).fetchone()[0]
    version = con.execute("select format from meta").fetchone()[0] if found else 1
    if version != FORMAT:
        con.close()
        raise CdpError(
            f"the profile store in {ws.root} was written by another version of cdp "
            f"(format {version}, this one reads {FORMAT}): run `cdp run --full-refresh`"
        )
    return con


def _phone_key(query: str, region: str) -> str | None:
    """E.164 from a number in any format the pipeline accepts: `+44 20 …`,
    `00 44 20 …`, `001 313 …` (international prefixes), `(313) 318-5461`."""
    from cdp.harmonise.text import phone_e164

    text = re.sub(r"[\s().\-/]", "", query)
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("011") and region == "US":
        text = "+" + text[3:]
    return phone_e164(text, region)


def find(con, query: str, region: str = "US", postcode: str | None = None) -> list[str]:
    """The unified ids the query names (an email or phone may belong to several)."""
    query = query.strip()
    if not query:
        return []

    def ids(key: str, kinds: tuple[str, ...], post: str | None = None) -> list[str]:
        sql = "select distinct unified_individual_id from lookup where key = ? and kind in ?"
        params: list = [key, list(kinds)]
        if post:
            sql += " and postal_code = ?"
            params.append(re.sub(r"\s", "", post).upper())
        return [r[0] for r in con.execute(sql + " order by 1", params).fetchall()]

    if EMAIL_RE.match(query):
        return ids(query.lower(), ("email",))
    if PHONE_RE.match(query):
        e164 = _phone_key(query, region)
        if e164 is None:
            raise CdpError(f"{query!r} is not a phone number I can read (default region {region})")
        return ids(e164, ("phone",))
    found = ids(query, ("id",))
    if found:
        return found
    from cdp.harmonise.text import fold

    words = [w for w in (fold(x) for x in query.split()) if w]
    if len(words) >= 2:
        return ids(f"{words[0]} {words[-1]}", ("name",), postcode)
    return []


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load(con, uid: str) -> dict | None:
    """The profile document of one unified id (the JSON of `cdp profile --format json`
    and of the API), or None if the store does not hold it: one row of the store's
    `profile` table, precomputed at the end of the run, with its `customer` row."""
    cur = con.execute(
        "select * exclude (unified_individual_id) from profile where unified_individual_id = ?",
        [uid],
    )
    row = cur.fetchone()
    if row is None:
        return None
    cols = [d[0] for d in cur.description]
    # The customer_360 row is kept beside the document (it changes whenever "now" moves,
    # the document only when the person's own rows do). Two point reads: a scalar
    # subquery in one statement was slower (1M store: median 13 ms against 10).
    customer = con.execute(
        "select c from customer c where c.unified_individual_id = ?", [uid]
    ).fetchone()
    return {
        "unified_individual_id": uid,
        "customer": _plain(customer[0]) if customer else None,
        **{c: _plain(v) for c, v in zip(cols, row, strict=True)},
    }


def lookup_profiles(
    ws: Workspace, query: str, postcode: str | None = None, region: str | None = None
) -> list[dict]:
    """Every profile the query names."""
    con = open_store(ws)
    try:
        if region is None:  # the store keeps the region its phones were read with
            region = con.execute("select default_region from meta").fetchone()[0]
        docs = [load(con, uid) for uid in find(con, query, region, postcode)]
    finally:
        con.close()
    return [d for d in docs if d is not None]


def store_exists(ws: Workspace) -> bool:
    from cdp.serving.profile_store import store_path

    return Path(store_path(ws.lake_dir)).exists()
