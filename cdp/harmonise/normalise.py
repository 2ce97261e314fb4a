"""Normalisers that need Python libraries (phonenumbers, unidecode), shared by dbt and the CLI."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from unidecode import unidecode

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1_000_000)
def phone_e164(raw: str | None, region: str = "US") -> str | None:
    """E.164 for a valid number, else None. Numbers without a country code use `region`."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1_000_000)
def fold(text: str | None) -> str | None:
    """A match key: NFKC, accents and special letters folded to ASCII, lowercase, alnum only."""
    if text is None:
        return None
    folded = _NON_ALNUM.sub("", unidecode(unicodedata.normalize("NFKC", text)).lower())
    return folded or None


def _distinct_map(values: pa.Array, fn) -> pa.Array:
    """Apply `fn` to each distinct value once, then spread the results back."""
    values = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    uniques = pc.unique(values)
    mapped = pa.array([fn(v) for v in uniques.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(values, value_set=uniques))


def _phone_udf(values: pa.Array, regions: pa.Array) -> pa.Array:
    region = next((r for r in regions.to_pylist() if r), "US")
    return _distinct_map(values, lambda v: phone_e164(v, region))


def _fold_udf(values: pa.Array) -> pa.Array:
    return _distinct_map(values, fold)


def register_functions(conn) -> None:
    from duckdb.sqltypes import VARCHAR

    conn.create_function(
        "cdp_phone_e164",
        _phone_udf,
        [VARCHAR, VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    conn.create_function(
        "cdp_fold",
        _fold_udf,
        [VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
