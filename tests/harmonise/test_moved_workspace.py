"""A workspace moved or copied after a run: dbt's views name this workspace's lake again
before dbt runs (cdp.harmonise.dbt_env.repoint_views). The whole pipeline on a copy, with
the original moved away, is tests/test_crash_increment.py."""

from __future__ import annotations

import shutil

import duckdb

from cdp.harmonise.dbt_env import connect_dbt_database, repoint_views
from cdp.harmonise.normalise import register_functions
from cdp.workspace import Workspace


def _workspace(root, name: str) -> Workspace:
    """A workspace whose dbt database holds two views over its own lake (one calling a
    cdp function, as staging views do) and one view naming no file."""
    ws = Workspace(root)
    ws.ensure_dirs()
    table = ws.harmonised_dir / "people.parquet"
    duckdb.execute(f"copy (select '{name}' as who) to '{table}'")
    con = duckdb.connect(str(ws.dbt_database))
    register_functions(con)
    con.execute(f"create view people as select * from read_parquet('{table}')")
    con.execute(f"create view folded as select cdp_fold(who) as who from read_parquet('{table}')")
    con.execute("create view constant as select 'lake/' as path")
    con.close()
    return ws


def _views(ws: Workspace) -> dict[str, str]:
    con = duckdb.connect(str(ws.dbt_database), read_only=True)
    try:
        return dict(
            con.execute("select view_name, sql from duckdb_views() where not internal").fetchall()
        )
    finally:
        con.close()


def _who(ws: Workspace, view: str = "people") -> str:
    con = connect_dbt_database(ws)
    try:
        return con.execute(f"select who from {view}").fetchone()[0]
    finally:
        con.close()


def test_a_copied_workspace_reads_its_own_lake(tmp_path):
    first = _workspace(tmp_path / "first", "first")
    assert repoint_views(first) is False  # dbt's first run here: nothing moved
    assert (first.state_dir / "dbt_root").read_text() == str(first.root)
    copy = Workspace(shutil.copytree(first.root, tmp_path / "a copy"))
    duckdb.execute(f"copy (select 'copy' as who) to '{copy.harmonised_dir / 'people.parquet'}'")
    assert _who(copy) == "first"  # what an increment's unselected models read

    assert repoint_views(copy) is True
    assert _who(copy) == "copy"
    assert _who(copy, "folded") == "copy"
    assert str(first.root) not in _views(copy)["people"]
    assert _views(copy)["constant"] == _views(first)["constant"]
    assert (copy.state_dir / "dbt_root").read_text() == str(copy.root)
    assert repoint_views(copy) is False  # once
    assert _who(first) == "first"


def test_a_workspace_of_an_older_version_is_repointed_by_what_its_views_name(tmp_path):
    first = _workspace(tmp_path / "first", "first")
    copy = Workspace(shutil.copytree(first.root, tmp_path / "moved"))
    (copy.state_dir / "dbt_root").unlink(missing_ok=True)  # never written by that version
    duckdb.execute(f"copy (select 'moved' as who) to '{copy.harmonised_dir / 'people.parquet'}'")
    shutil.rmtree(first.root)  # moved, not copied

    assert repoint_views(copy) is True
    assert _who(copy) == "moved"
