"""The CDP functions give the same answers on Spark as on DuckDB, on awkward inputs.

DuckDB runs them as registered by the dbt-duckdb plugin (cdp.harmonise.normalise), with
its own nfc_normalize and strip_accents; Spark runs the Arrow UDFs of cdp.spark.udfs.
"""

from __future__ import annotations

import duckdb
import pytest

from cdp.harmonise.normalise import register_functions
from tests.spark.conftest import SKIP_REASON

pytest.importorskip("pyspark", reason=SKIP_REASON)
pytestmark = [pytest.mark.spark, pytest.mark.takes(40)]

PHONES = [
    ("(415) 555-0132", "US"),
    ("+44 20 7946 0958", "US"),  # a country code wins over the region
    ("020 7946 0958", "GB"),
    ("020 7946 0958", "UK"),  # an alias of GB
    ("06 12 34 56 78", "fr"),
    ("555-0132", "US"),  # too short: not a number
    ("not a phone", "US"),
    ("", "US"),
    (None, "US"),
    ("+1 415 555 0132 ext. 7", None),
    ("0049 30 901820", "DE"),
]
NAMES = [
    "Bob",
    "bob",
    "Robert",
    "Élodie",
    "  José-María ",
    "O'Brien",
    "Łukasz",
    "Straße",
    "Å",
    "e\u0301",  # e + combining acute: not yet composed
    "",
    None,
    "Bill",
    "Dr. Juan Q. de la Vega III",
    "Lee, Ann",
    "Ms Mary-Jane Smith-Jones",
]
# name: (DuckDB's SQL, Spark's SQL) of one text argument
TEXT_FUNCTIONS = {
    "fold": ("cdp_fold(v)", "cdp_fold(v)"),
    "name_canon": ("cdp_name_canon(lower(v))", "cdp_name_canon(lower(v))"),
    "name_variants": ("cdp_name_variants(lower(v))", "cdp_name_variants(lower(v))"),
    "parse_name": ("cdp_parse_name(v)", "cdp_parse_name(v)"),
    "nfc": ("nfc_normalize(v)", "cdp_nfc(v)"),
    "strip_accents": ("strip_accents(v)", "cdp_strip_accents(v)"),
}


def _duckdb(sql: str, rows: list[tuple], columns: str) -> list:
    con = duckdb.connect()
    register_functions(con)
    values = ", ".join(
        "(" + ", ".join("null" if x is None else "'" + x.replace("'", "''") + "'" for x in r) + ")"
        for r in rows
    )
    out = con.execute(f"select {sql} from (values {values}) t ({columns})").fetchall()
    return [_plain(r[0]) for r in out]


def _spark(spark, sql: str, rows: list[tuple], columns: list[str]) -> list:
    frame = spark.createDataFrame(rows, ", ".join(f"{c} string" for c in columns))
    frame.createOrReplaceTempView("inputs")
    out = spark.sql(f"select {sql} from inputs").collect()
    return [_plain(r[0]) for r in out]


def _plain(value):
    """Structs and lists as plain Python values, whichever engine made them."""
    if hasattr(value, "asDict"):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def test_phone_e164_is_the_same_on_both_engines(spark):
    sql = "cdp_phone_e164(v, r)"
    duck = _duckdb(sql, PHONES, "v, r")
    assert duck == _spark(spark, sql, PHONES, ["v", "r"])
    assert duck[0] == "+14155550132" and duck[2] == duck[3] == "+442079460958"
    assert duck[6] is None and duck[8] is None


@pytest.mark.parametrize("name", sorted(TEXT_FUNCTIONS))
def test_name_functions_are_the_same_on_both_engines(spark, name):
    duckdb_sql, spark_sql = TEXT_FUNCTIONS[name]
    rows = [(n,) for n in NAMES]
    duck = _duckdb(duckdb_sql, rows, "v")
    assert duck == _spark(spark, spark_sql, rows, ["v"])
    assert any(v is not None for v in duck)  # a real answer, not nulls on both sides
