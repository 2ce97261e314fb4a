"""Cast raw values to the declared column types; a value that fails becomes null and is counted."""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from cdp.config.sources import ColumnSpec

# Tried after the declared format, in order: the odd formats real exports use.
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d")
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)
TRUE = ("true", "t", "yes", "y", "1")
FALSE = ("false", "f", "no", "n", "0")

ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


@dataclass
class CastFailure:
    field: str
    check: str
    row_numbers: list[int]


def _parse_temporal(col: pl.Expr, kind: str, declared: list[str] | None) -> pl.Expr:
    formats = tuple(declared or ()) + (DATE_FORMATS if kind == "date" else TIMESTAMP_FORMATS)
    text = col.str.strip_chars()
    parsers = []
    for fmt in dict.fromkeys(formats):
        if kind == "date":
            parsers.append(text.str.to_date(fmt, strict=False, exact=True))
        else:
            parsers.append(text.str.to_datetime(fmt, strict=False, exact=True, time_unit="us"))
    return pl.coalesce(parsers)


# Digit-group separators besides the declared one's opposite: spaces and apostrophes.
_GROUP_EXTRA = " \u00a0\u202f'"


def _number_text(text: pl.Expr, decimal: str) -> pl.Expr:
    """Locale text to a plain number: with decimal "," `1.299,00` -> `1299.00`; with "."
    `1,299.00` -> `1299.00`. Text that is not well grouped (`1,29.9`) becomes null."""
    group = re.escape("." if decimal == "," else ",")
    extra = re.escape(_GROUP_EXTRA)
    pattern = rf"^[+-]?(\d{{1,3}}([{group}{extra}]\d{{3}})+|\d+)({re.escape(decimal)}\d+)?$"
    plain = text.str.replace_all(f"[{group}{extra}]", "").str.replace(re.escape(decimal), ".")
    return pl.when(text.str.contains(pattern)).then(plain).otherwise(None)


def cast_expr(name: str, spec: ColumnSpec, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if spec.type == "string":
        return col.cast(pl.String)
    if dtype != pl.String:
        # Typed input (Parquet/JSON numbers): a plain cast, failures to null.
        target = {
            "integer": pl.Int64,
            "double": pl.Float64,
            "boolean": pl.Boolean,
            "date": pl.Date,
            "timestamp": pl.Datetime("us"),
        }[spec.type]
        return col.cast(target, strict=False)
    text = col.str.strip_chars()
    if spec.decimal and spec.type in ("integer", "double"):
        text = _number_text(text, spec.decimal)
    if spec.type == "integer":
        return text.cast(pl.Int64, strict=False)
    if spec.type == "double":
        return text.cast(pl.Float64, strict=False)
    if spec.type == "boolean":
        low = text.str.to_lowercase()
        return (
            pl.when(low.is_in(TRUE)).then(True).when(low.is_in(FALSE)).then(False).otherwise(None)
        )
    return _parse_temporal(col, spec.type, spec.format)


def cast_table(
    table: pa.Table, columns: dict[str, ColumnSpec]
) -> tuple[pa.Table, list[CastFailure]]:
    """Cast declared columns; report, per field, the rows whose value did not parse."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    exprs, checks = [], []
    for name, spec in columns.items():
        if name not in df.columns or spec.type == "string":
            continue
        exprs.append(cast_expr(name, spec, df.schema[name]).alias(name))
        checks.append((name, spec.type))
    if not exprs:
        return table, []
    original = df.select([pl.col(n).alias(f"__orig_{n}") for n, _ in checks] + ["_row_number"])
    df = df.with_columns(exprs)
    failures = []
    for name, kind in checks:
        orig = original[f"__orig_{name}"]
        if orig.dtype == pl.String:
            orig_present = orig.is_not_null() & (orig.str.strip_chars() != "")
        else:
            orig_present = orig.is_not_null()
        bad = original.filter(orig_present & df[name].is_null())["_row_number"]
        if bad.len():
            failures.append(CastFailure(name, f"not a valid {kind}", bad.to_list()))
    return df.to_arrow(), failures


def conform(table: pa.Table, columns: dict[str, ColumnSpec], required: list[str]) -> pa.Table:
    """Add missing columns as typed nulls and fix declared types, for a stable schema."""
    n = table.num_rows
    for name in required:
        if name not in table.column_names:
            spec = columns.get(name, ColumnSpec())
            table = table.append_column(name, pa.nulls(n, ARROW_TYPES[spec.type]))
    for name, spec in columns.items():
        if name in table.column_names:
            i = table.column_names.index(name)
            target = ARROW_TYPES[spec.type]
            if table.schema.field(i).type != target:
                table = table.set_column(i, name, table.column(i).cast(target, safe=False))
    # Large string views from polars are plain strings on disk, so every load matches.
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))
