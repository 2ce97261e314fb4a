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


def test_a_new_workspace_parses_only_what_differs_and_names_no_other(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_CACHE_DIR", str(tmp_path / "cache"))
    first = _workspace(tmp_path / "first")
    prepare(first)
    parsed, total = _parsed(first)
    assert parsed == total  # nothing to start from
    cached = list((tmp_path / "cache" / "dbt-parse").glob("*.msgpack"))
    assert len(cached) == 1 and str(first.root).encode() not in cached[0].read_bytes()

    second = _workspace(tmp_path / "second", MEMBERS)
    prepare(second)
    parsed, total = _parsed(second)
    assert 0 < parsed < total / 4, (parsed, total)  # its own models, not the project
    manifest = (second.dbt_target_dir / "manifest.json").read_text()
    assert '"model.cdp.stg_members__individuals"' in manifest
    assert str(first.root) not in manifest
    own_parse = (second.dbt_target_dir / "partial_parse.msgpack").read_bytes()
    assert str(first.root).encode() not in own_parse
    assert _seed_roots(second) == {str(project_dir(second))}

    # The first workspace gone, the second reads dbt's seeds from its own project.
    shutil.rmtree(first.root)
    run_dbt(second, ["seed", "--quiet"])

    # Moved: the parse follows the workspace too.
    moved = Workspace(shutil.move(second.root, tmp_path / "moved"))
    prepare(moved)
    parsed, total = _parsed(moved)
    assert parsed < total / 4, (parsed, total)
    assert str(second.root) not in (moved.dbt_target_dir / "manifest.json").read_text()
    assert _seed_roots(moved) == {str(project_dir(moved))}
    run_dbt(moved, ["seed", "--quiet"])


def test_another_project_never_seeds_and_a_parse_moves_losslessly(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_CACHE_DIR", str(tmp_path / "cache"))
    ws = _workspace(tmp_path / "ws")
    prepare(ws)
    data = (ws.dbt_target_dir / "partial_parse.msgpack").read_bytes()
    here = str(project_dir(ws))
    assert parse_cache.retarget(parse_cache.retarget(data, here, "/x"), "/x", here) == data

    fresh = tmp_path / "fresh"
    assert not parse_cache.seed(fresh, tmp_path, _project_hash() + "-changed")
    assert parse_cache.seed(fresh, tmp_path, _project_hash())
    assert not parse_cache.seed(fresh, tmp_path, _project_hash())  # it has its own now
