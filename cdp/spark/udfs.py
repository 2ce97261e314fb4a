"""The CDP functions in a SparkSession: the very Arrow functions that DuckDB runs
(cdp.harmonise.normalise), registered as Spark Arrow UDFs under the same names, plus the
two DuckDB built-ins Spark lacks (nfc_normalize, strip_accents).

One implementation for both engines is what makes their results equal: a phone number,
a folded name or a nickname list cannot come out differently on Spark
(tests/spark/test_udf_parity.py checks it on a list of awkward inputs).
"""

from __future__ import annotations

import unicodedata

import pyarrow as pa

from cdp.harmonise import normalise


def nfc(text: str | None) -> str | None:
    """DuckDB's nfc_normalize."""
    return None if text is None else unicodedata.normalize("NFC", text)


def strip_accents(text: str | None) -> str | None:
    """DuckDB's strip_accents: the combining marks of the decomposed text dropped, then
    composed again (Å -> A, ł stays ł, ß stays ß)."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def _fold(values: pa.Array) -> pa.Array:
    return normalise._fold_udf(values)


def _name_canon(values: pa.Array) -> pa.Array:
    return normalise._name_canon_udf(values)


def _name_variants(values: pa.Array) -> pa.Array:
    return normalise._name_variants_udf(values)


def _parse_name(values: pa.Array) -> pa.Array:
    return normalise._parse_name_udf(values)


def _phone(values: pa.Array, regions: pa.Array) -> pa.Array:
    return normalise._phone_udf(values, regions)


def _nfc(values: pa.Array) -> pa.Array:
    return normalise._distinct_map(values, nfc)


def _strip_accents(values: pa.Array) -> pa.Array:
    return normalise._distinct_map(values, strip_accents)


NAME_STRUCT = "struct<" + ",".join(f"{f}:string" for f in normalise.NAME_FIELDS) + ">"

# name -> (function, Spark return type); every argument is a string.
FUNCTIONS = {
    "cdp_fold": (_fold, "string"),
    "cdp_name_canon": (_name_canon, "string"),
    "cdp_name_variants": (_name_variants, "array<string>"),
    "cdp_parse_name": (_parse_name, NAME_STRUCT),
    "cdp_phone_e164": (_phone, "string"),
    "cdp_nfc": (_nfc, "string"),
    "cdp_strip_accents": (_strip_accents, "string"),
}


def register_udfs(spark) -> None:
    from pyspark.sql.functions import arrow_udf

    for name, (fn, returns) in FUNCTIONS.items():
        spark.udf.register(name, arrow_udf(fn, returns))
