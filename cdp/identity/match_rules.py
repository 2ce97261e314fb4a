"""Match rules: deterministic links, applied before Splink, as CDPs declare them.

A rule names the fields two records must share exactly (`exact`: any of a record's
emails, phones or identifiers counts) and those that must be present on both and
compatible (`compatible`: a first name that is the same, a nickname, an initial or a
typo away). Every pair a rule finds then passes the same guards as a Splink link
(cdp.identity.cluster): a shared family mailbox does not merge a family.

The frequency guard: a value held by more than `max_identifier_records` records (a
family mailbox of a large family, a shop's landline, info@, a default loyalty number)
stops acting as a key. Such values are counted by field, never listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

import duckdb
import numpy as np
import pyarrow as pa

from cdp.identity.cluster import dates_conflict, names_compatible
from cdp.identity.settings import IdentitySettings, MatchRule

SCALAR_FIELDS = {
    "first_name": "first_name_key",
    "last_name": "last_name_key",
    "birth_date": "birth_date",
    "postal_code": "postal_code",
    "national_id": "national_id",
}


@dataclass
class RulePairs:
    """The pairs of records (indexes, lo < hi) one rule links, and what it ignored."""

    rule: str
    lo: np.ndarray
    hi: np.ndarray
    ignored: Counter = field(default_factory=Counter)  # field type -> values over the guard
    ignored_records: int = 0


def _key_sql(fieldname: str, alias: str, strong_types: list[str]) -> tuple[str, str | None]:
    """(SQL of the key value, the list column it unnests as `alias`, or None)."""
    if fieldname == "email":
        return f"t.{alias}", "emails"
    if fieldname == "phone":
        return f"t.{alias}", "phones"
    if fieldname.startswith("identifier"):
        types = fieldname.split(":", 1)[1:] or strong_types
        quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in types) or "''"
        v = f"t.{alias}"  # the other types' keys are null
        return (
            f"case when {v}.type in ({quoted}) then {v}.type || ':' || {v}.value end",
            "identifiers",
        )
    if fieldname == "address":
        return "t.address_line1_key || '|' || t.postal_code", None
    return f"t.{SCALAR_FIELDS[fieldname]}", None


def _rule_keys(rule: MatchRule, settings: IdentitySettings, table: str):
    """A rule's key expressions (k0, k1, ...) over `t`, the rows `t` is (`table` with a
    row per value of each list a key unnests), the key column list and the condition
    that every key is present."""
    keys, rows = [], table
    for n, f in enumerate(rule.exact):
        sql, column = _key_sql(f, f"u{n}", settings.strong_identifiers)
        keys.append(f"{sql} as k{n}")
        if column:
            # Unnested in a select list, one list per level (so two lists give every
            # combination). A lateral `from t, unnest(t.x)` took seconds at 1.78 million
            # records where this takes a tenth of one.
            rows = f"(select *, unnest({column}) as u{n} from {rows})"
    key_cols = ", ".join(f"k{n}" for n in range(len(keys)))
    not_null = " and ".join(f"k{n} is not null" for n in range(len(keys)))
    return keys, rows, key_cols, not_null


def rule_pairs(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rule: MatchRule,
    settings: IdentitySettings,
    columns: _Columns,
    shared: dict[str, set[str]] | None = None,
) -> RulePairs:
    """Candidate pairs of one rule. `table` holds the records with their index `_i`."""
    keys, rows, key_cols, not_null = _rule_keys(rule, settings, table)
    # Within a part (`_in_part`, cdp.identity.incremental): a value still counts every
    # record holding it, but only the part's holders are paired.
    part = "_in_part" in con.table(table).columns
    members = "list(_i order by _i) filter (where _in_part)" if part else "list(_i order by _i)"
    groups = con.sql(
        f"""
        with keyed as (
            select distinct t._i, {"t._in_part, " if part else ""}{", ".join(keys)}
            from {rows} as t
        ),
        -- The values held twice are found first: a sorted list per value of all of them
        -- took ten times as long (5.6 s against 0.6 s for emails at a million records).
        repeated as (
            select {key_cols}, count(*) as held from keyed where {not_null}
            group by {key_cols}
            having count(*) > 1{" and count(*) filter (where _in_part) > 1" if part else ""}
        )
        select k0 as label, {key_cols}, any_value(held) as held, {members} as members
        from keyed join repeated using ({key_cols})
        group by {key_cols}
        """
    ).to_arrow_table()
    limit = settings.max_identifier_records
    out = RulePairs(rule.name, np.array([], np.int64), np.array([], np.int64))
    lo: list[int] = []
    hi: list[int] = []
    labels = groups["label"].to_pylist()
    shared = shared or {}
    checks = [(f"k{n}", shared[f]) for n, f in enumerate(rule.exact) if shared.get(f)]
    values = {col: groups[col].to_pylist() for col, _ in checks}
    held = groups["held"].to_pylist()
    for g, (label, members) in enumerate(zip(labels, groups["members"].to_pylist(), strict=True)):
        if held[g] > limit:
            out.ignored[_field_type(rule.exact[0], label)] += 1
            out.ignored_records += held[g]
            continue
        mailbox = next((col for col, vals in checks if values[col][g] in vals), None)
        if mailbox is not None:
            out.ignored[f"{rule.exact[int(mailbox[1:])]} shared by different people"] += 1
            out.ignored_records += held[g]
            continue
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                lo.append(members[a])
                hi.append(members[b])
    if lo and rule.compatible:
        keep = _compatible(columns, rule.compatible, lo, hi, settings)
        lo = [x for x, k in zip(lo, keep, strict=True) if k]
        hi = [x for x, k in zip(hi, keep, strict=True) if k]
    pairs = np.unique(np.array([lo, hi], dtype=np.int64).reshape(2, -1), axis=1)
    out.lo, out.hi = pairs[0], pairs[1]
    return out


def _field_type(fieldname: str, label: str | None) -> str:
    """How an ignored value is reported: its field, or an identifier's type."""
    if fieldname == "identifier" and label:
        return label.split(":", 1)[0]
    return fieldname.split(":", 1)[-1]


class _Columns:
    """The record columns the compatibility checks read, as Python values, made once
    for the records a rule paired (a whole column of a million records as Python
    lists took seven seconds, and as long again in garbage collection)."""

    def __init__(self, records: pa.Table):
        self.records = records
        self._cache: dict[str, dict[int, object]] = {}

    def __getitem__(self, name: str) -> dict[int, object]:
        return self._cache[name]

    def load(self, names: list[str], lo: list[int], hi: list[int]) -> None:
        """Read `names` at the records of these pairs (those not read yet)."""
        wanted = np.unique(np.array(lo + hi, dtype=np.int64))
        for name in names:
            known = self._cache.setdefault(name, {})
            todo = wanted[~np.isin(wanted, np.fromiter(known, np.int64, len(known)))]
            values = self.records.column(name).take(pa.array(todo)).to_pylist()
            known.update(zip(todo.tolist(), values, strict=True))


_READS = {
    "birth_date": ["birth_date"],
    "first_name": ["first_name_key", "first_name_variants"],
    "last_name": ["last_name_key"],
}


def _compatible(columns: _Columns, fields, lo, hi, settings) -> list[bool]:
    columns.load(sorted({c for f in fields for c in _READS.get(f, _READS["last_name"])}), lo, hi)
    keep = []
    for a, b in zip(lo, hi, strict=True):
        ok = True
        for f in fields:
            if f == "birth_date":
                x, y = columns["birth_date"][a], columns["birth_date"][b]
                ok = bool(x and y) and not dates_conflict(x, y, settings.birth_date_conflict_edits)
            elif f == "first_name":
                x, y = columns["first_name_key"][a], columns["first_name_key"][b]
                v = columns["first_name_variants"]
                ok = bool(x and y) and names_compatible(_names(x, v[a]), _names(y, v[b]))
            else:
                x, y = columns["last_name_key"][a], columns["last_name_key"][b]
                ok = bool(x and y) and names_compatible((x,), (y,))
            if not ok:
                break
        keep.append(ok)
    return keep


def _names(key: str, variants) -> tuple[str, ...]:
    return (key, *(v for v in (variants if variants is not None else ()) if v != key))


def shared_contacts(
    con: duckdb.DuckDBPyConnection, table: str, settings: IdentitySettings
) -> dict[str, set[str]]:
    """Emails and phones held by records of different people: a family mailbox, a home
    landline. Two records whose first names are neither the same, nicknames, initials
    nor typos of each other are two people, so a value they share is not personal: no
    rule links on it and Splink does not count it as evidence."""
    shared: dict[str, set[str]] = {}
    # Within a part, only the values its records hold matter (held by anyone, though).
    part = "_in_part" in con.table(table).columns
    for fieldname, column in (("email", "emails"), ("phone", "phones")):
        # Flat (value, name) rows, and each name's variants once: fetching a list of
        # name structs per value cost seconds at a million records. In a part, only the
        # holders of the part's values are read: grouping every value's holders, then
        # keeping the part's, took 0.5 s at 1M, against 0.2 s.
        part_values = f"select distinct unnest({column}) as value from {table} where _in_part"
        rows = con.sql(
            f"""
            with held as (
                select distinct value, name from (
                    select unnest({column}) as value, first_name_key as name
                    from {table}
                    where first_name_key is not null
                ) {f"semi join ({part_values}) using (value)" if part else ""}
            )
            select value, name
            from held
            where value in (
                select value from held group by value
                having count(*) > 1 and count(*) <= {settings.max_identifier_records}
            )
            order by value, name
            """
        ).to_arrow_table()
        values, names = rows["value"].to_pylist(), rows["name"].to_pylist()
        known = (
            dict(
                # (a name's variants follow from it: one row per name, without comparing
                # the lists of every holder, 0.26 s against 0.08 at 1M)
                con.execute(
                    f"select first_name_key, any_value(first_name_variants) from {table} "
                    "where first_name_key in (select unnest(?)) group by first_name_key",
                    [sorted(set(names))],
                ).fetchall()
            )
            if names
            else {}
        )
        spelled = {name: _names(name, variants) for name, variants in known.items()}
        shared[fieldname] = {
            value
            for value, group in groupby(zip(values, names, strict=True), key=itemgetter(0))
            if not _all_compatible([spelled[name] for _, name in group])
        }
    return shared


def _all_compatible(names: list[tuple[str, ...]]) -> bool:
    return all(
        names_compatible(names[i], names[j])
        for i in range(len(names))
        for j in range(i + 1, len(names))
    )


def all_rule_pairs(
    records: pa.Table,
    settings: IdentitySettings,
    within: np.ndarray | None = None,
    shared: dict[str, set[str]] | None = None,
) -> tuple[list[RulePairs], dict[int, dict[str, set[str]]], dict[str, set[str]]]:
    """Every rule's pairs, in the declared order; each record's strong identifiers (the
    values within the frequency guard) for the different-identifier guard; and the
    emails and phones shared by different people.

    `within`: the indexes of a part of the records (cdp.identity.incremental): only
    pairs inside it, its records' identifiers and the contacts they hold are found,
    while how many records hold a value is still counted over all of them. `shared`:
    the shared contacts when known already (found for a part holding these values)."""
    con = _part_table(records, within)
    columns = _Columns(records)
    if shared is None:
        shared = shared_contacts(con, "records", settings)
    results = [
        rule_pairs(con, "records", r, settings, columns, shared) for r in settings.match_rules
    ]
    return results, strong_values(con, "records", settings), shared


def _part_table(
    records: pa.Table, within: np.ndarray | None, fresh: np.ndarray | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with `records` registered, flagged `_in_part` when `within`
    names a part (and `_fresh`)."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    for name, at in (("_in_part", within), ("_fresh", fresh)):
        if at is not None:
            flags = np.zeros(records.num_rows, dtype=bool)
            flags[at] = True
            records = records.append_column(name, pa.array(flags))
    con.register("records", records)
    return con


def part_shared_contacts(
    records: pa.Table, settings: IdentitySettings, within: np.ndarray
) -> dict[str, set[str]]:
    """`shared_contacts` for the values a part's records hold (held by anyone)."""
    return shared_contacts(_part_table(records, within), "records", settings)


def _per_rule(con, table: str, settings: IdentitySettings, query) -> np.ndarray:
    """The record indexes (`_i`) `query(keys, rows, key_cols, not_null)` selects for any
    match rule (`_rule_keys` over `table`), sorted."""
    found = [
        np.asarray(
            con.sql(query(*_rule_keys(rule, settings, table))).fetchnumpy()["_i"],
            dtype=np.int64,
        )
        for rule in settings.match_rules
    ]
    return np.unique(np.concatenate(found)) if found else np.array([], np.int64)


def rule_partners(
    records: pa.Table, settings: IdentitySettings, within: np.ndarray, fresh: np.ndarray
) -> np.ndarray:
    """Indexes of the part's records that share every exact key of some rule with a
    fresh record, where that value was within the frequency guard before the fresh
    records came: the records whose rule links a fresh record can make or unmake."""

    def query(keys, rows, key_cols, not_null) -> str:
        return f"""
            with keyed as (
                select distinct t._i, t._fresh, {", ".join(keys)}
                from {rows} as t
                where t._in_part
            ),
            groups as (
                select {key_cols} from keyed where {not_null} group by {key_cols}
                having count(*) filter (where _fresh) > 0
                   and count(*) filter (where not _fresh) between 1
                       and {settings.max_identifier_records}
            )
            select distinct _i from keyed semi join groups using ({key_cols})
            """

    return _per_rule(_part_table(records, within, fresh), "records", settings, query)


def old_value_holders(records: pa.Table, old: pa.Table, settings: IdentitySettings) -> np.ndarray:
    """Indexes of the records sharing every exact key of some rule with a value an edited
    or removed record held before and holds no more (`old`: their earlier values), where
    two to `max_identifier_records` records hold it now: the pairs a rule may link now
    that the value has one holder less (it may have fallen under the frequency guard)."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register("records", records)
    con.register("old", old)
    con.execute(
        "create view both_ as select *, false as _old from records "
        "union all by name select *, true as _old from old"
    )

    def query(keys, rows, key_cols, not_null) -> str:
        return f"""
            with keyed as (
                select distinct t.unique_id, t._i, t._old, {", ".join(keys)}
                from {rows} as t
            ),
            lost as (
                select unique_id, {key_cols} from keyed where _old and {not_null}
                except
                select unique_id, {key_cols} from keyed where not _old
            ),
            groups as (
                select {key_cols} from keyed
                semi join lost using ({key_cols})
                group by {key_cols}
                having count(*) filter (where not _old) between 2
                    and {settings.max_identifier_records}
            )
            select distinct _i from keyed semi join groups using ({key_cols})
            where not _old
            """

    return _per_rule(con, "both_", settings, query)


def strong_values(con, table: str, settings: IdentitySettings) -> dict[int, dict[str, set[str]]]:
    types = settings.strong_identifiers
    if not types:
        return {}
    quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in types)
    part = "_in_part" in con.table(table).columns  # only the part's records are wanted
    rows = con.execute(
        f"""
        with ids as (
            select distinct _i, v.type as id_type, v.value as id_value
            from (select _i, unnest(identifiers) as v from {table})
            where v.type in ({quoted})
        ),
        usable as (
            select id_type, id_value from ids group by all
            having count(*) <= {settings.max_identifier_records}
        )
        select ids._i, ids.id_type, ids.id_value
        from ids join usable using (id_type, id_value)
        {"where ids._i in (select _i from " + table + " where _in_part)" if part else ""}
        order by 1, 2, 3
        """
    ).fetchall()
    strong: dict[int, dict[str, set[str]]] = {}
    for i, t, v in rows:
        strong.setdefault(i, {}).setdefault(t, set()).add(v)
    return strong
