"""Normalisers that need Python libraries (phonenumbers, unidecode, nicknames, nameparser),
shared by dbt (as DuckDB functions), identity resolution and the CLI."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from cdp.harmonise.phone_cache import phone_cache
from cdp.harmonise.text import fold, phone_e164

__all__ = ["canonical_first_name", "fold", "name_variants", "phone_e164", "register_functions"]


@lru_cache(maxsize=1)
def _namer():
    from nicknames import NickNamer

    return NickNamer()


@lru_cache(maxsize=200_000)
def canonical_first_name(key: str | None) -> str | None:
    """Bob, Rob and Robert share one key; names with no known variants stay as they are."""
    if not key:
        return key
    canon = _namer().canonicals_of(key)
    # A name that is itself a formal name keeps its own key (Mary stays Mary).
    if not canon or key in canon or _namer().nicknames_of(key):
        return key
    return min(canon)


@lru_cache(maxsize=200_000)
def name_variants(key: str | None) -> tuple[str, ...]:
    """The name and the names the list relates to it directly, either way: Bob -> (bob,
    bobby, rob, robert, ...). Two names are nickname-compatible when one is in the other's
    list; a third name both relate to does not count (the list relates Robert and William
    to Bill, which would make father and son one person)."""
    if not key:
        return ()
    return tuple(sorted({key, *_namer().canonicals_of(key), *_namer().nicknames_of(key)}))


def _distinct_map(values: pa.Array, fn, type_=pa.string()) -> pa.Array:
    """Apply `fn` to each distinct value once, then spread the results back."""
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    uniques = pc.unique(values)
    mapped = pa.array([fn(v) for v in uniques.to_pylist()], type_)
    return pc.take(mapped, pc.index_in(values, value_set=uniques))


# Common names for regions that are not ISO 3166 codes.
_REGION_ALIASES = {"UK": "GB"}
DEFAULT_REGION = "US"


def _region(raw: str | None) -> str:
    region = (raw or "").strip().upper() or DEFAULT_REGION
    return _REGION_ALIASES.get(region, region)


def _phone_udf(values: pa.Array, regions: pa.Array) -> pa.Array:
    """Each row's number read with that row's region: every distinct (region, number)
    pair is parsed once, whatever the order of the rows."""
    regions = regions.cast(pa.string()) if not pa.types.is_string(regions.type) else regions
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    # "\x1f" (unit separator) joins the pair into one key; it is in no region code.
    keys = pc.binary_join_element_wise(pc.fill_null(regions, ""), values, "\x1f")
    return _distinct_map(keys, _phone_of_key)


def _read_phone_key(key: str) -> str | None:
    region, number = key.split("\x1f", 1)
    return phone_e164.__wrapped__(number, _region(region))


def _phone_of_key(key: str | None) -> str | None:
    """The same numbers come back in other models of a run (a customer's phone in the
    CRM, the shop and the consent log) and in every later run; a parse costs about
    20 µs. Each is read once per workspace (cdp.harmonise.phone_cache)."""
    if key is None:
        return None
    return phone_cache().get(key, _read_phone_key)


NAME_FIELDS = ("title", "first", "middle", "last", "suffix")
NAME_TYPE = pa.struct([(f, pa.string()) for f in NAME_FIELDS])


@lru_cache(maxsize=200_000)
def parse_name(full: str | None) -> dict | None:
    """A full name split by nameparser: "Dr. Juan Q. de la Vega III" -> title Dr., first
    Juan, middle Q., last de la Vega, suffix III. "Lee, Ann" is last name first."""
    if full is None or not full.strip():
        return None
    from nameparser import HumanName

    name = HumanName(full.strip())
    return {f: (getattr(name, f).strip() or None) for f in NAME_FIELDS}


def _parse_name_udf(values: pa.Array) -> pa.Array:
    return _distinct_map(values, parse_name, NAME_TYPE)


def _name_canon_udf(values: pa.Array) -> pa.Array:
    return _distinct_map(values, canonical_first_name)


def _name_variants_udf(values: pa.Array) -> pa.Array:
    return _distinct_map(
        values, lambda v: list(name_variants(v)) if v else None, pa.list_(pa.string())
    )


def _fold_udf(values: pa.Array) -> pa.Array:
    return _distinct_map(values, fold)


def register_functions(conn) -> None:
    import duckdb
    from duckdb.sqltypes import VARCHAR

    conn.create_function(
        "cdp_parse_name",
        _parse_name_udf,
        [VARCHAR],
        duckdb.struct_type({f: VARCHAR for f in NAME_FIELDS}),
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    conn.create_function(
        "cdp_phone_e164",
        _phone_udf,
        [VARCHAR, VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    for name, fn, returns in (
        ("cdp_fold", _fold_udf, VARCHAR),
        ("cdp_name_canon", _name_canon_udf, VARCHAR),
        ("cdp_name_variants", _name_variants_udf, duckdb.list_type(VARCHAR)),
    ):
        conn.create_function(
            name, fn, [VARCHAR], returns, type="arrow", null_handling="special", side_effects=False
        )
