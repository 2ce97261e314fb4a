"""User mistakes get one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import gc

import pytest
from typer.testing import CliRunner

from cdp import collector
from cdp.cli.main import app

runner = CliRunner()


def test_missing_workspace_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["run", "--workspace", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "cdp init" in result.output
    assert "Traceback" not in result.output


def test_sql_before_any_run_says_what_to_do(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    result = runner.invoke(app, ["sql", "select 1", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert "run `cdp run` first" in result.output


def test_bad_source_yaml_names_file_and_key(tmp_path):
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    (ws / "sources" / "crm.yml").write_text(
        "name: crm\nlanding: landing/crm/*.csv\nformat: csv\nprimary_key: id\n"
        "objects:\n  individual:\n    frist_name: first\n"
    )
    result = runner.invoke(app, ["run", "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "crm.yml" in result.output
    assert "objects.individual.frist_name: unknown canonical field" in result.output
    assert "Traceback" not in result.output


def test_init_writes_commented_examples_and_is_idempotent(tmp_path):
    ws = tmp_path / "ws"
    first = runner.invoke(app, ["init", str(ws)])
    assert first.exit_code == 0
    assert (ws / "cdp.yml").read_text().startswith("#")
    assert (ws / "segments" / "high_value.yml").exists()
    assert (ws / "activations" / "email_high_value.yml").exists()
    (ws / "cdp.yml").write_text("default_region: GB\n")
    again = runner.invoke(app, ["init", str(ws)])
    assert again.exit_code == 0
    assert (ws / "cdp.yml").read_text() == "default_region: GB\n"  # never overwritten


def test_sql_rejects_unknown_format(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    result = runner.invoke(
        app, ["sql", "select 1", "--format", "xml", "--workspace", str(tmp_path / "ws")]
    )
    assert result.exit_code == 1 and "--format" in result.output


def test_the_current_folder_is_the_workspace_when_it_holds_cdp_yml(tmp_path, monkeypatch):
    from cdp.workspace import resolve_workspace

    monkeypatch.delenv("CDP_WORKSPACE", raising=False)
    runner.invoke(app, ["init", str(tmp_path / "mine")])
    monkeypatch.chdir(tmp_path / "mine")
    assert resolve_workspace().root == (tmp_path / "mine").resolve()
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)  # no cdp.yml here: ./data, which does not exist
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_a_run_sets_the_collector_and_gives_it_back():
    """`cdp run` tunes Python's garbage collector for the run only: a process running it
    in-process (a notebook, these tests) gets its own settings back, even after a failure."""
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector.for_a_run():
        assert gc.get_threshold() == collector.RUN_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what the imports made is left out of collections
        raise RuntimeError("a failed run")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
