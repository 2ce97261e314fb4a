"""The profile store: one DuckDB file, written at the end of a run, for lookups by email,
phone, unified id or name that answer in milliseconds at a million customers.

It is a serving copy of the marts (the lake stays the store of record): one precomputed
document per person (`profile`: contact points with their sources, consents as exports
apply them, recent orders, service cases and engagement, segments and source records),
`customer` (the customer_360 rows, which a lookup joins to the document, and listings
read), a `lookup` table from every key a person can be found by to the unified id and
`segment` for the console's member pages. It is written beside the old one and renamed
over it, so a reader (the CLI, the agent console) always sees one complete run, never
half a person, and a run in progress never blocks it.

Documents are the costly part (about 90 s of 110 at a million people), and most people's
do not change from one run to the next. So each document's inputs are hashed per person
(`doc_hash`: the rows of every section, in no particular order, all of a person's orders,
cases and events, not only the latest), and a run builds the documents of the people
whose hash changed, copying everyone else's from the store it replaces; only those
people's rows are held in memory to build them. The customer_360 row is kept out of the
document for this reason: it holds insights relative to "now" (`insights.as_of`) that
move for everyone when new events arrive, while a person's sections change only when
their own rows do. A full refresh, an erasure, a store of another format or a change
to the documents' layout (columns, sort orders) builds every document.

Copying a million unchanged documents into the new file was itself about half of a
small run's store. So the new file starts as a byte copy of the old one: its `profile`
table loses the documents built again (and those of people who are gone) and gains the
new ones at its end, while the small tables are written again. Those appended documents
are out of id order, so a lookup reads their row groups as well as its own; once they
pass APPENDED_SHARE of all documents, the table is written whole and sorted again. The
`lookup` table is kept the same way: only the keys of people whose name, postcode,
emails or phones changed (`key_hash`) are written again. An erasure never starts from a
copy (`reuse=False`): deleted rows keep their bytes in the file until DuckDB reuses the
space.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from cdp.io import lake
from cdp.workspace import Workspace

RECENT = 10  # orders, cases and engagement events kept per person
# section table -> (its attributed mart, the time its RECENT rows are the latest by)
RECENT_SECTIONS = {
    "recent_order": ("int_sales_orders_attributed", "order_ts"),
    "service_case": ("int_service_cases_attributed", "opened_ts"),
    "engagement": ("int_engagement_emails_attributed", "event_ts"),
}
# A section's rows are the view `<table>_rows`; `<table>` holds those of the documents built.
ROWS = "_rows"


def store_path(lake_dir: Path) -> Path:
    return lake_dir / "serving" / "profiles.duckdb"


def _parquet(path: Path) -> str | None:
    return lake.scan(path) if path.exists() else None


# One profile document per person, in the section order of `cdp profile --format json`:
# section -> (source table below, sort order inside the section).
SECTIONS = {
    "contact_points": ("contact_point", "channel, contact_rank nulls last, contact_value"),
    "consents": ("consent", "purpose, channel"),
    "orders": ("recent_order", "order_ts desc nulls last"),
    "service_cases": ("service_case", "opened_ts desc nulls last"),
    "engagement": ("engagement", "event_ts desc nulls last"),
    "segments": ("segment", "segment_name"),
    "records": ("records", "record_kind desc, source_name, source_record_id"),
}
# 2: one precomputed document per person (table `profile`); 3: the customer_360 row out of
# the document, in `customer`, and `doc_hash` beside it
FORMAT = 3

# A point lookup reads the one row group whose min/max (zonemap) holds the key, so the
# tables are sorted on their key and written in small row groups: the cost of a lookup
# is then one small group, whatever the number of customers (DuckDB 2.0 answers these
# filters with a scan, not with its ART index).
ROW_GROUP_SIZE = 8192
# The share of documents kept out of id order (appended by runs that updated the file in
# place) beyond which a run writes the profile table whole again, sorted.
APPENDED_SHARE = 0.05


def build_profile_store(ws: Workspace, *, reuse: bool = True) -> dict[str, int]:
    """Write the store from the lake; returns the row count of each table, and in
    `documents_built` how many documents were built rather than copied. `reuse=False`
    builds every document (a full refresh, an erasure)."""
    import duckdb

    from cdp.config.settings import load_settings
    from cdp.io.atomic import TMP_PREFIX

    marts, identity = ws.marts_dir, ws.identity_dir
    target = store_path(ws.lake_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{TMP_PREFIX}{target.name}")
    tmp.unlink(missing_ok=True)
    c360 = _parquet(marts / "customer_360.parquet")
    if c360 is None:
        return {}
    if reuse and target.exists():
        # (a cdp serve reading the old file is not disturbed: it is only read)
        shutil.copyfile(target, tmp)
    spill = ws.root / ".cdp" / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    # The sections are assembled in memory (spilling to .cdp/tmp); only what a reader
    # needs is written to the file.
    con = duckdb.connect(config={"memory_limit": "2GB", "temp_directory": str(spill)})
    con.execute("set enable_progress_bar = false")
    attach = f"attach '{tmp}' as store (row_group_size {ROW_GROUP_SIZE})"
    try:
        con.execute(attach)
    except duckdb.Error:
        if not tmp.exists():
            raise
        tmp.unlink()  # an old store DuckDB cannot open: start from an empty file
        con.execute(attach)
    # Of a copy, only `profile` and `lookup` may be kept (_write_documents and
    # _write_lookup decide); the rest is written again, in the space the dropped tables
    # free at the checkpoint.
    copied = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'store'"
        ).fetchall()
    }
    for name in sorted(copied - {"profile", "lookup"}):
        con.execute(f'drop table store."{name}"')
    con.execute("checkpoint store")
    counts: dict[str, int] = {}

    def stored(name: str, sql: str, order: str, in_order: str | None = None) -> None:
        # `in_order`: a column the source is already sorted by, as the marts write it.
        # Then the rows are taken as they come and only checked (at 1M customers,
        # customer_360 took 2.5 s sorted again, 2.0 s taken in order, 0.06 s checked).
        if in_order is None or not _taken_in_order(con, name, sql, in_order):
            con.execute(f"create or replace table store.{name} as {sql} order by {order}")
        counts[name] = con.execute(f"select count(*) from store.{name}").fetchone()[0]

    def section(name: str, sql: str | None) -> None:
        # every row of a section, as a view: hashed for everyone, staged for those whose
        # documents are built (_stage_sections)
        if sql is not None:
            con.execute(f"create temp view {name}{ROWS} as {sql}")

    not_empty = "where unified_individual_id is not null"  # dbt's empty-model row
    stored(
        "customer",
        f"select * from {c360} {not_empty}",
        "unified_individual_id",
        in_order="unified_individual_id",
    )
    links = _parquet(identity / "unified_link_individual.parquet")
    section(
        "records",
        links
        and f"""
        select l.unified_individual_id, l.source_name, l.source_record_id, l.record_kind,
            l.linked_by, l.match_probability
        from {links} l {not_empty}
        """,
    )
    section("contact_point", _contact_points(ws))
    consent = _parquet(marts / "individual_consent.parquet")
    section("consent", consent and f"select * from {consent} {not_empty}")
    segments = _parquet(marts / "segment_membership.parquet")
    if segments:
        # Sorted by segment, so a page of one segment's members (the API's
        # /api/segments/{name}/members) reads the row groups of that segment only.
        stored(
            "segment",
            f"select * from {segments} {not_empty}",
            "segment_name, unified_individual_id",
        )
        con.execute(f"create temp view segment{ROWS} as select * from store.segment")
    for name, (file, _) in RECENT_SECTIONS.items():
        path = marts / f"{file}.parquet"
        section(name, _parquet(path) and f"select * from {_parquet(path)} {not_empty}")
    lookup = _lookup(con)
    layout, appended = _write_documents(
        con, counts, target if reuse else None, in_file="profile" in copied, lookup=lookup
    )
    lookup_appended = _write_lookup(con, counts, lookup, in_file="lookup" in copied)
    if _attached(con, "old"):
        con.execute("detach old")
    region = load_settings(ws.settings_file).default_region
    con.execute(
        "create table store.meta as select ? as default_region, ? as format, ? as layout, "
        "? as appended, ? as lookup_appended",
        [region, FORMAT, layout, appended, lookup_appended],
    )
    con.close()
    os.replace(tmp, target)
    return counts


def _write_documents(
    con, counts: dict[str, int], previous: Path | None, in_file: bool, lookup: str
) -> tuple[str, int]:
    """The `profile` table. Where the previous store can be reused and the file is its
    copy (`in_file`: the copied table is there), its table is updated in place: the
    documents built again are deleted and appended, unless the documents out of id order
    would then pass APPENDED_SHARE.
    Otherwise it is written in slices of CHUNK customers in id order: one slice's
    documents fit in the memory limit (at a million customers all of them do not), and
    the slices in order leave the table sorted; in each slice, the documents of people
    whose `doc_hash` is the one the previous store holds are copied from it, the others
    built. Returns the layout hash (the SQL of the documents, the lookup and their
    hashes) that makes reuse safe, and how many documents are out of id order. The old
    store stays attached as `old` when its documents could be copied."""
    sql, hashes = _documents(con)
    keys = _key_hashes(con)
    layout = hashlib.sha256((sql + hashes + lookup + keys).encode()).hexdigest()[:16]
    con.execute(
        "create table store.doc_hash as select c.unified_individual_id, "
        f"coalesce(h.doc_hash, 0) as doc_hash, k.key_hash from store.customer c "
        f"left join ({hashes}) h using (unified_individual_id) "
        f"left join ({keys}) k using (unified_individual_id) "
        "order by c.unified_individual_id"
    )
    old = _previous_store(con, previous, layout)
    if old:
        con.execute(f"create temp table built as {_hash_changed('doc_hash')}")
        con.execute(
            "create temp table gone as select unified_individual_id from old.doc_hash "
            "anti join store.doc_hash using (unified_individual_id)"
        )
        # Not copied: the documents built, and the people who are gone (a small table,
        # so a copy is a scan of the old documents and one cheap anti join).
        con.execute(
            "create temp table not_copied as select unified_individual_id from built "
            "union all select unified_individual_id from gone"
        )
    else:
        con.execute("create temp table built as select unified_individual_id from store.customer")
    counts["documents_built"] = con.execute("select count(*) from built").fetchone()[0]
    _stage_sections(con, everyone=not old)
    if old and in_file:
        total = con.execute("select count(*) from store.doc_hash").fetchone()[0]
        appended = _appended(con, "appended") + counts["documents_built"]
        if appended <= APPENDED_SHARE * total:
            _update_in_place(con, sql)
            counts["profile"] = con.execute("select count(*) from store.profile").fetchone()[0]
            return layout, appended
    if in_file:
        con.execute("drop table store.profile")
    bounds = [
        r[0]
        for r in con.execute(
            "select unified_individual_id from (select unified_individual_id, "
            "row_number() over (order by unified_individual_id) - 1 as i from store.customer) "
            f"where i % {CHUNK} = 0 order by 1"
        ).fetchall()
    ]
    if old:
        from_old = (
            "select p.* from old.profile p anti join not_copied using (unified_individual_id) "
            f"where {_IN_SLICE.replace('unified_individual_id', 'p.unified_individual_id')}"
        )
        sql = (
            f"select * from ({from_old} union all by name select * from ({sql})) "
            "order by unified_individual_id"
        )
    for n, low in enumerate(bounds):
        high = bounds[n + 1] if n + 1 < len(bounds) else None
        params = {"low": low, "high": high}
        if n == 0:
            con.execute(f"create table store.profile as {sql}", params)
        else:
            con.execute(f"insert into store.profile {sql}", params)
    if not bounds:  # no customer: an empty table all the same
        con.execute(f"create table store.profile as {sql}", {"low": "", "high": ""})
    counts["profile"] = con.execute("select count(*) from store.profile").fetchone()[0]
    return layout, 0


def _taken_in_order(con, name: str, sql: str, column: str) -> bool:
    """Write `sql`'s rows to store table `name` in the order they come (one file's scan
    keeps the file's order) and say whether they are in `column` order: no row less than
    the row before it, counted in the table's own order."""
    con.execute(f"create table store.{name} as {sql}")
    out_of_order = con.execute(
        f"select count(*) from (select {column} < lag({column}) over (order by rowid) as down "
        f"from store.{name}) where down"
    ).fetchone()[0]
    return out_of_order == 0


def _attached(con, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_databases() where database_name = ?", [name]
        ).fetchone()[0]
    )


def _write_lookup(con, counts: dict[str, int], lookup: str, in_file: bool) -> int:
    """The `lookup` table; returns how many of its rows are out of key order.

    A person's keys change only with their name, postcode, emails or phones (`key_hash`
    in doc_hash), so where the file is a copy of a store whose documents were copied
    (`old` attached) and holds its lookup, only the rows of people whose keys changed,
    or who are gone, are deleted and written again, at the table's end; the name keys
    are folded in Python, and folding a million was most of the table's cost. Past
    APPENDED_SHARE of rows out of order, it is written whole and sorted again."""
    if in_file and _attached(con, "old") and _has_column(con, "old", "doc_hash", "key_hash"):
        con.execute(
            f"create temp table keys_changed as {_hash_changed('key_hash')} "
            "union all select unified_individual_id from gone"
        )
        con.execute(
            f"create temp table keys_fresh as {_lookup(con, only='keys_changed')} order by key"
        )
        total = con.execute("select count(*) from store.lookup").fetchone()[0]
        fresh = con.execute("select count(*) from keys_fresh").fetchone()[0]
        appended = _appended(con, "lookup_appended") + fresh
        if appended <= APPENDED_SHARE * max(total, 1):
            con.execute(
                "delete from store.lookup where unified_individual_id in "
                "(select unified_individual_id from keys_changed)"
            )
            con.execute("insert into store.lookup select * from keys_fresh")
            counts["lookup"] = con.execute("select count(*) from store.lookup").fetchone()[0]
            return appended
    if in_file:
        con.execute("drop table store.lookup")
    con.execute(f"create table store.lookup as {lookup} order by key")
    counts["lookup"] = con.execute("select count(*) from store.lookup").fetchone()[0]
    return 0


def _has_view(con, name: str) -> bool:
    return bool(
        con.execute("select count(*) from duckdb_views() where view_name = ?", [name]).fetchone()[0]
    )


def _has_column(con, database: str, table: str, column: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from duckdb_columns() where database_name = ? and table_name = ? "
            "and column_name = ?",
            [database, table, column],
        ).fetchone()[0]
    )


def _hash_changed(column: str) -> str:
    """The people whose hash `column` in doc_hash differs from the old store's, or who
    are new."""
    return (
        "select n.unified_individual_id from store.doc_hash n anti join old.doc_hash o "
        "on n.unified_individual_id = o.unified_individual_id "
        f"and n.{column} is not distinct from o.{column}"
    )


def _appended(con, column: str) -> int:
    """How many rows of a table of the old store are out of order, as its meta `column`
    (`appended`: documents, `lookup_appended`: lookup rows) says; none before the column
    was recorded: such a table was written whole."""
    has = _has_column(con, "old", "meta", column)
    return con.execute(f"select {column} from old.meta").fetchone()[0] if has else 0


def _update_in_place(con, documents: str) -> None:
    """The copied `profile` table without the documents not copied (built again, or of
    people who are gone), and with the new documents at its end (in id order among
    themselves)."""
    con.execute(
        "delete from store.profile where unified_individual_id in "
        "(select unified_individual_id from not_copied)"
    )
    con.execute(f"insert into store.profile {documents}", {"low": "", "high": None})


def _previous_store(con, path: Path | None, layout: str) -> bool:
    """Attach the store this run replaces as `old` when its documents can be copied: the
    same format and layout, with its hashes."""
    if path is None or not path.exists():
        return False
    import duckdb

    try:
        con.execute(f"attach '{path}' as old (read_only)")
    except duckdb.Error:
        return False
    meta = {
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where database_name = 'old' "
            "and table_name = 'meta'"
        ).fetchall()
    }
    same = (
        "layout" in meta
        and con.execute(
            "select format = ? and layout = ? from old.meta", [FORMAT, layout]
        ).fetchone()[0]
    )
    if not same:
        con.execute("detach old")
    return bool(same)


CHUNK = 100_000  # customers per slice of the profile table's build


_IN_SLICE = "unified_individual_id >= $low and ($high is null or unified_individual_id < $high)"


def _documents(con) -> tuple[str, str]:
    """(documents, hashes). Documents: one row per person of one slice of ids (parameters
    $low and $high; a null high is open-ended), each section a list of structs in its
    display order (empty where the person or the workspace has none), and only for the
    people in the temp table `built`, from the sections as _stage_sections holds them.
    Hashes: per person, one number from the hashes of all their sections' rows (every
    row: all their orders, not only the RECENT latest), whatever their order (a person
    without rows has none)."""
    present = {r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()}
    ctes, joins, hashes = [], [], []
    fields = ["c.unified_individual_id"]
    for i, (section, (table, order)) in enumerate(SECTIONS.items()):
        if f"{table}{ROWS}" not in present:
            fields.append(f"[] as {section}")
            continue
        cols = [r[0] for r in con.execute(f"describe {table}{ROWS}").fetchall()]
        if section == "segments":
            item = "segment_name"
        else:
            item = "struct_pack({})".format(
                ", ".join(f'"{c}" := "{c}"' for c in cols if c != "unified_individual_id")
            )
        ctes.append(
            f"s{i} as (select unified_individual_id, list({item} order by {order}) as v "
            f"from {table} semi join built using (unified_individual_id) "
            f"where {_IN_SLICE} group by 1)"
        )
        joins.append(f"left join s{i} using (unified_individual_id)")
        fields.append(f"coalesce(s{i}.v, []) as {section}")
        # hugeint sums: no overflow, and the same total in any row order
        hashes.append(
            f"select unified_individual_id, hash({i}, sum(hash({item})::hugeint), count(*)) "
            f"as h from {table}{ROWS} group by 1"
        )
    with_ = f"with {', '.join(ctes)} " if ctes else ""
    documents = (
        f"{with_}select {', '.join(fields)} from store.customer c "
        f"semi join built using (unified_individual_id) {' '.join(joins)} "
        f"where {_IN_SLICE.replace('unified_individual_id', 'c.unified_individual_id')} "
        "order by c.unified_individual_id"
    )
    union = " union all ".join(hashes) or (
        "select null::varchar as unified_individual_id, null::ubigint as h where false"
    )
    return documents, (
        f"select unified_individual_id, sum(h::hugeint) as doc_hash from ({union}) group by 1"
    )


def _stage_sections(con, everyone: bool) -> None:
    """Each section's rows of the people whose documents are built (temp table `built`;
    `everyone`: all of them), and of orders, cases and engagement only the RECENT latest.
    Hashing reads every row; only these are held in memory (at 1M customers, staging
    every section whole took 2.8 s of a 10.7 s increment)."""
    views = {r[0] for r in con.execute("select view_name from duckdb_views()").fetchall()}
    recent = {name: ts for name, (_, ts) in RECENT_SECTIONS.items()}
    for table, _ in SECTIONS.values():
        if f"{table}{ROWS}" not in views:
            continue
        only = "" if everyone else " semi join built using (unified_individual_id)"
        latest = (
            f"qualify row_number() over (partition by unified_individual_id "
            f"order by {recent[table]} desc nulls last, source_record_id) <= {RECENT}"
            if table in recent
            else ""
        )
        con.execute(f"create temp table {table} as select * from {table}{ROWS}{only} {latest}")


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


def _key_hashes(con) -> str:
    """Per person, one number from everything `_lookup` reads of them: their name and
    postcode, and their emails and phones (in no particular order)."""
    customer = {r[0] for r in con.execute("describe store.customer").fetchall()}
    named = [c for c in ("first_name", "last_name", "postal_code") if c in customer]
    parts = [
        f"select unified_individual_id, hash({', '.join(named or ['unified_individual_id'])})"
        "::hugeint as h from store.customer"
    ]
    if _has_view(con, f"contact_point{ROWS}"):
        cols = {r[0] for r in con.execute(f"describe contact_point{ROWS}").fetchall()}
        keyed = [c for c in ("channel", "contact_value", "match_key") if c in cols]
        parts.append(
            f"select unified_individual_id, hash({', '.join(keyed)})::hugeint "
            f"from contact_point{ROWS} where channel in ('email', 'phone')"
        )
    union = " union all ".join(parts)
    return f"select unified_individual_id, sum(h) as key_hash from ({union}) group by 1"


def _lookup(con, only: str | None = None) -> str:
    """key -> unified id: emails (as given and as mailbox key), E.164 phones, unified
    ids, and folded names (`first last`, with the postal code to narrow them down).
    `only`: a table of the unified ids to give the keys of (all of them when None); it
    filters each table read, below the name folding (a filter on the whole query is
    not pushed under its `distinct`)."""
    people = f" semi join {only} using (unified_individual_id)" if only else ""
    parts = [
        "select unified_individual_id as key, 'id' as kind, unified_individual_id, "
        f"null::varchar as postal_code from store.customer{people}"
    ]
    if _has_view(con, f"contact_point{ROWS}"):
        cols = {r[0] for r in con.execute(f"describe contact_point{ROWS}").fetchall()}
        parts.append(
            "select lower(contact_value) as key, channel as kind, unified_individual_id, "
            f"null from contact_point{ROWS}{people} where channel in ('email', 'phone') "
            "and contact_value is not null"
        )
        if "match_key" in cols:
            parts.append(
                "select match_key, channel, unified_individual_id, null "
                f"from contact_point{ROWS}{people} "
                "where channel in ('email', 'phone') and match_key is not null"
            )
    customer = {r[0] for r in con.execute("describe store.customer").fetchall()}
    if {"first_name", "last_name"} <= customer:
        postal = "upper(replace(postal_code, ' ', ''))" if "postal_code" in customer else "null"
        parts.append(
            f"select cdp_name_key(first_name, last_name), 'name', unified_individual_id, "
            f"{postal} from store.customer{people} "
            "where first_name is not null and last_name is not null"
        )
    from cdp.harmonise.text import fold

    def name_key(first: str | None, last: str | None) -> str | None:
        f, la = fold(first), fold(last)
        return f"{f} {la}" if f and la else None

    if not only:
        # Declared with side effects so that DuckDB calls it only where the query does:
        # otherwise it pushed the outer `key is not null` below the join with `only`, and
        # folded the names of a million customers to write the keys of a few thousand
        # (the lookup's update took 1.0 s at 1M, against 0.3 to 0.4 s).
        con.create_function(
            "cdp_name_key", name_key, ["VARCHAR", "VARCHAR"], "VARCHAR", side_effects=True
        )
    return "select distinct * from (" + " union all ".join(parts) + ") where key is not null"
