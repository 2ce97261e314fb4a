"""An increment killed while the harmonised tables are folders of parts (cdp/io/parts.py),
then again after identity wrote its outputs but before it made its state for the next
run current, then run to the end, gives what the same increment run cleanly gives
(tests/crash.py)."""

from __future__ import annotations

import shutil
import subprocess

import duckdb
import pytest

from cdp.harmonise.increments import HARMONISE
from cdp.identity.incremental import HASHES
from cdp.io import lake, parts
from cdp.io.atomic import TMP_PREFIX, staged_path
from tests.crash import CDP, _links, _marts, _run

pytestmark = [pytest.mark.slow, pytest.mark.takes(150)]


def _harmonised(ws) -> dict[str, list[tuple]]:
    folder = ws / "lake" / "harmonised"
    return {
        name: duckdb.execute(
            f"select * from {lake.scan(folder / f'{name}.parquet')} order by all"
        ).fetchall()
        for name in HARMONISE.kept
    }


def _append(root) -> None:
    subprocess.run(
        [CDP, "generate", "--append", "--customers", "20", "-w", str(root)],
        check=True,
        capture_output=True,
    )


def test_an_increment_killed_in_harmonise_then_rerun_equals_a_clean_increment(ran, tmp_path):
    clean, ws = tmp_path / "clean", tmp_path / "ws"
    # Both are copies of the shared demo run's workspace (fixture `ran`). The killed one
    # runs while the clean one is moved away: it must read only its own files (dbt's
    # paths are relative to the workspace, its saved parse names the project folder:
    # cdp.harmonise.dbt_env.prepare), and the clean one is still at the state before its
    # increment.
    shutil.copytree(ran[0].root, clean, symlinks=True)
    shutil.copytree(clean, ws, symlinks=True)
    aside = clean.rename(tmp_path / "aside")
    _append(ws)
    killed = _run(ws, "dbt.dbt_harmonise@50")
    assert killed.returncode == -9, killed.stderr[-2000:]
    # killed half way: some tables have their new part, identity's input not yet
    folder = ws / "lake" / "harmonised"
    counts = {name: len(parts.part_files(folder / f"{name}.parquet")) for name in HARMONISE.parted}
    assert max(counts.values()) == 2 and counts["int_person_records_prepared"] == 1, counts
    identity = ws / "lake" / "identity"
    hashes = (identity / HASHES).read_bytes()
    killed = _run(ws, "identity.state")
    assert killed.returncode == -9, killed.stderr[-2000:]
    # the links are the increment's, the hashes it staged not yet current
    links_killed = _links(ws)
    assert staged_path(identity / HASHES).exists()
    assert (identity / HASHES).read_bytes() == hashes
    done = _run(ws)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (ws / ".cdp" / "dbt_root").read_text() == str(ws)
    # the manifest names no other folder (a run reads its row counts where it says)
    manifest = (ws / ".cdp" / "dbt_target" / "manifest.json").read_text()
    assert f"{ran[0].root}/" not in manifest and f"{ws}/.cdp/dbt_project" in manifest
    assert '"location": "../../lake/marts/customer_360.parquet"' in manifest

    aside.rename(clean)
    _append(clean)
    assert _run(clean).returncode == 0
    assert links_killed == _links(clean)
    assert _harmonised(ws) == _harmonised(clean)
    assert _links(ws) == _links(clean)
    assert _marts(ws) == _marts(clean)
    assert [str(p.relative_to(ws)) for p in ws.rglob(f"{TMP_PREFIX}*")] == []
    assert not list((ws / "lake").rglob("tmp_*.parquet"))  # DuckDB's half-written COPYs
