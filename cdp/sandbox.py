"""The sandbox for user SQL (`cdp sql`, notebooks): read the lake, touch nothing else.

DuckDB can read and write any file the user can (read_text('/etc/passwd'), COPY over a
lake file, ATTACH another database, INSTALL an extension). A sandboxed connection
allows file access under `<workspace>/lake/` only and locks that setting, and
`check_select` refuses every statement but one SELECT, because COPY *into* the lake
is still allowed by the file-system setting and would let a query empty a mart.
"""

from __future__ import annotations

import re

import duckdb

from cdp.errors import CdpError
from cdp.workspace import Workspace

# Leading comments and the EXPLAIN prefix, to see what an EXPLAIN would run:
# EXPLAIN ANALYZE executes its statement, so `explain analyze copy ...` writes a file.
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_EXPLAIN = re.compile(r"\Aexplain(?:\s+analyze)?(?:\s*\([^)]*\))?\s", re.I)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def connect_sandboxed(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog that can read files under the lake only."""
    if not ws.catalog_file.exists():
        raise CdpError(f"no catalog in {ws.root}: run `cdp run` first")
    con = duckdb.connect(str(ws.catalog_file), read_only=True)
    # The views hold the paths the catalog was built with; allow the resolved form too,
    # in case the workspace was reached through a symlink.
    lakes = dict.fromkeys([f"{ws.lake_dir}/", f"{ws.lake_dir.resolve()}/"])
    try:
        # The catalog's views read paths relative to the workspace (cdp.catalog); a
        # variable belongs to its connection, so every connection sets it.
        con.execute(f"set variable cdp_workspace = {_literal(str(ws.root))}")
        if not _sandboxed(con, lakes):
            # The order matters: allowed_directories cannot change once external access
            # is off, and lock_configuration stops the query itself from turning it back on.
            con.execute(f"set allowed_directories=[{', '.join(map(_literal, lakes))}]")
            con.execute("set enable_external_access=false")
            con.execute("set lock_configuration=true")
    except BaseException:
        con.close()
        raise
    return con


def _sandboxed(con: duckdb.DuckDBPyConnection, lakes: dict) -> bool:
    """Connections to one database file in one process share its settings: another
    connection may have sandboxed (and locked) them already."""
    locked, external, allowed = con.execute(
        "select current_setting('lock_configuration'), "
        "current_setting('enable_external_access'), current_setting('allowed_directories')"
    ).fetchall()[0]
    if not locked:
        return False
    if external or not set(lakes) <= set(allowed or []):
        raise CdpError("the catalog is open in this process with other settings; close it first")
    return True


def check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise CdpError unless `sql` is exactly one SELECT (or EXPLAIN of one)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise CdpError(f"query failed: {str(e).splitlines()[0]}") from None
    if len(statements) != 1:
        raise CdpError(f"cdp sql runs one SELECT statement; got {len(statements)} statements")
    (stmt,) = statements
    if stmt.type == duckdb.StatementType.SELECT:
        return
    got = stmt.type.name
    if stmt.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(con, stmt.query)
        if inner == duckdb.StatementType.SELECT:
            return
        got = f"EXPLAIN {inner.name}" if inner is not None else got
    raise CdpError(f"cdp sql runs one SELECT statement; got {got}")


def _explained(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.StatementType | None:
    """The type of the statement an EXPLAIN wraps; None when it cannot be told apart."""
    text = _LEADING_COMMENTS.sub("", query, count=1)
    m = _EXPLAIN.match(text)
    if not m:
        return None
    try:
        inner = con.extract_statements(text[m.end() :])
    except duckdb.Error:
        return None
    return inner[0].type if len(inner) == 1 else None
