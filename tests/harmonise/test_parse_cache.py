"""A new workspace starts from dbt's parse of another (cdp.harmonise.parse_cache): dbt
parses again only the files that differ, and nothing in the result names the other
workspace, which may be gone."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.harmonise import parse_cache
from cdp.harmonise.dbt_env import _project_hash, prepare, project_dir, run_dbt
from cdp.workspace import Workspace, resolve_workspace

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(40),
    pytest.mark.usefixtures("warm_dbt_commands"),
]

# A source of one workspace only: its generated models are what the other lacks.
MEMBERS = """\
name: members
landing: landing/members/*.csv
format: csv
primary_key: member_no
objects:
  individual: {first_name: given, last_name: family}
  contact_point_email: {email_address: mail}
"""


def _workspace(root, source: str | None = None) -> Workspace:
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    if source:
        (root / "sources" / "members.yml").write_text(source)
    return resolve_workspace(root)


def _parsed(ws: Workspace) -> tuple[int, int]:
    """(files dbt parsed, files in the project) in the workspace's last parse."""
    info = json.loads((ws.dbt_target_dir / "perf_info.json").read_text())
    return info["parsed_path_count"], info["path_count"]


def _seed_roots(ws: Workspace) -> set[str]:
    manifest = json.loads((ws.dbt_target_dir / "manifest.json").read_text())
    return {n["root_path"] for n in manifest["nodes"].values() if n["resource_type"] == "seed"}


def test_a_new_workspace_parses_only_what_differs_and_names_no_other(tmp_path, parse_cache):
    # The session's cache (tests/conftest.py), holding this project's parse once any test
    # has prepared a workspace; made here otherwise.
    if not list((parse_cache / "dbt-parse").glob("*.msgpack")):
        prepare(_workspace(tmp_path / "first"))
    cached = list((parse_cache / "dbt-parse").glob("*.msgpack"))
    assert cached and all(str(tmp_path).encode() not in p.read_bytes() for p in cached)

    second = _workspace(tmp_path / "second", MEMBERS)
    prepare(second)
    parsed, total = _parsed(second)
    # Its own models, and the files reading a setting whose value differs from the
    # workspace that made the cache (in the suite, any test's): never the whole project.
    assert 0 < parsed < total, (parsed, total)
    manifest = (second.dbt_target_dir / "manifest.json").read_text()
    assert '"model.cdp.stg_members__individuals"' in manifest
    assert _seed_roots(second) == {str(project_dir(second))}
    run_dbt(second, ["seed", "--quiet"])  # read from its own project

    # Moved: the parse follows the workspace, and the old folder is gone.
    moved = Workspace(shutil.move(second.root, tmp_path / "moved"))
    prepare(moved)
    parsed, total = _parsed(moved)
    assert parsed < total / 4, (parsed, total)
    assert str(second.root) not in (moved.dbt_target_dir / "manifest.json").read_text()
    assert _seed_roots(moved) == {str(project_dir(moved))}
    run_dbt(moved, ["seed", "--quiet"])


def test_a_parse_is_kept_without_its_folder_and_seeds_only_its_own_project(tmp_path, monkeypatch):
    ws = _workspace(tmp_path / "ws")
    prepare(ws)
    data = (ws.dbt_target_dir / "partial_parse.msgpack").read_bytes()
    here = str(project_dir(ws))
    assert parse_cache.retarget(parse_cache.retarget(data, here, "/x"), "/x", here) == data

    monkeypatch.setenv("CDP_CACHE_DIR", str(tmp_path / "cache"))
    parse_cache.keep(ws.dbt_target_dir, project_dir(ws), _project_hash())
    (kept,) = (tmp_path / "cache" / "dbt-parse").glob("*.msgpack")
    assert str(ws.root).encode() not in kept.read_bytes()

    fresh = tmp_path / "fresh"
    assert not parse_cache.seed(fresh, tmp_path, _project_hash() + "-changed")
    assert parse_cache.seed(fresh, tmp_path, _project_hash())
    assert not parse_cache.seed(fresh, tmp_path, _project_hash())  # it has its own now
    assert str(tmp_path).encode() in (fresh / "partial_parse.msgpack").read_bytes()

    # A parse file that cannot be read, moved: removed, so dbt parses from scratch.
    broken = fresh / "partial_parse.msgpack"
    broken.write_bytes(b"\xc1 not msgpack")
    parse_cache.retarget_file(broken, str(tmp_path), "/elsewhere")
    assert not broken.exists()
