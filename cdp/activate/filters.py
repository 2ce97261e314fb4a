"""Segment filters: one boolean expression over the columns of customer_360, checked when
the configuration loads and compiled into a dbt model, never pasted into a query.

The filter is parsed with sqlglot into a syntax tree. Only the parts of an expression
are allowed — columns, literals, comparisons, arithmetic, AND/OR/NOT, IN over literals,
BETWEEN, LIKE, CASE and a list of scalar functions — and every column must be one of
customer_360's. The SQL written into the model is the tree rendered again, so a filter
such as `false) union all select ... from read_text('/etc/hostname') where (true` is not
one expression and is refused, and a table function cannot appear at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlglot
import sqlglot.expressions as exp
import yaml

from cdp.errors import CdpError

# Node types an expression may hold (besides the functions below).
ALLOWED_NODES = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.TryCast,
    exp.DataType,
    exp.Interval,
    exp.Var,
    exp.Tuple,
)

# Scalar functions a filter may call: text, numbers, dates. Nothing that reads a file,
# a table or a setting.
ALLOWED_FUNCTIONS = (
    exp.Coalesce,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Trim,
    exp.Substring,
    exp.Concat,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Greatest,
    exp.Least,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.DateDiff,
    exp.DateAdd,
    exp.DateSub,
    exp.DateTrunc,
    exp.Extract,
    exp.StartsWith,
    exp.Nullif,
    exp.ArrayContains,
)
ALLOWED_ANONYMOUS = {"contains", "list_contains", "date_part", "ends_with", "regexp_matches"}

CUSTOMER_360_DOC = "models/marts/customer_360.yml"


@lru_cache(maxsize=4)
def _documented_columns(project_dir: str) -> tuple[str, ...]:
    doc = yaml.safe_load((Path(project_dir) / CUSTOMER_360_DOC).read_text(encoding="utf-8"))
    model = next(m for m in doc["models"] if m["name"] == "customer_360")
    return tuple(c["name"] for c in model.get("columns", []))


def customer_360_columns() -> tuple[str, ...]:
    """The columns of customer_360, as documented beside the model (a test keeps the
    documentation equal to the model's output)."""
    from cdp.harmonise.dbt_env import DBT_PROJECT_DIR

    return _documented_columns(str(DBT_PROJECT_DIR))


def compile_filter(
    text: str, columns: tuple[str, ...] | None = None, dialect: str = "duckdb"
) -> str:
    """The filter as SQL (DuckDB's, or `dialect`'s: spark), rebuilt from its validated
    syntax tree; CdpError with the reason otherwise (the caller names the file and key)."""
    columns = customer_360_columns() if columns is None else columns
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except sqlglot.errors.ParseError as e:
        reason = str(e).splitlines()[0] if str(e) else "cannot parse"
        raise CdpError(f"not one SQL expression ({_plain(reason)})") from None
    if isinstance(tree, exp.Query | exp.Command) or not isinstance(tree, exp.Expression):
        raise CdpError("must be one boolean expression, not a statement")
    known = set(columns)
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if node.table:
                raise CdpError(f"{node.sql('duckdb')}: name columns without a table")
            if node.name not in known:
                raise CdpError(
                    f"unknown column {node.name!r} (customer_360 has: {', '.join(sorted(known))})"
                )
        elif isinstance(node, exp.Anonymous):
            if node.name.lower() not in ALLOWED_ANONYMOUS:
                raise CdpError(f"function {node.name}() is not allowed in a filter")
        elif isinstance(node, ALLOWED_NODES + ALLOWED_FUNCTIONS):
            continue
        elif isinstance(node, exp.Func):
            raise CdpError(f"function {node.sql_name()}() is not allowed in a filter")
        else:
            raise CdpError(f"{type(node).__name__.lower()} is not allowed in a filter")
    return tree.sql(dialect=dialect)


def _plain(text: str) -> str:
    """sqlglot underlines with terminal escapes; keep the words."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
