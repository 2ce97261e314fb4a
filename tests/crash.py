"""A `cdp run` killed with SIGKILL anywhere, then run again, gives what one clean run
gives: the same tables and export rows, no temporary folder or half-written file, and
every history event written once.

A copy of the shared clean run's workspace (fixture `ran`) takes the kills in turn
(cdp/failpoints.py names the points). Each rerun after a kill starts over (the run plan
sees an unfinished run); the last one runs to the end and is compared with the clean
run (tests/test_crash_run.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from cdp.io import lake
from cdp.io.atomic import TMP_PREFIX

CDP = str(Path(sys.executable).parent / "cdp")


# `cdp run` in a new process each time, as a user runs it, but forked from a server
# process that has imported cdp, Dagster and dagster-dbt once (multiprocessing's
# forkserver: a process with no threads, so a fork of it is clean), instead of importing
# them again in each of a test's runs (about 4.5 s of CPU each).
PRELOAD = ["cdp.cli.main", "dagster_project.run", "dagster_project.build", "dagster_dbt"]


def _cdp_main(args: list[str], env: dict[str, str], out: str, err: str) -> None:
    """`cdp ARGS` as the `cdp` script runs it, in the forked child, its output to files."""
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = [CDP, *args]
    from cdp.cli.entry import main

    main()


def _run(ws: Path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    """`cdp run --quiet -w WS` in a process of its own (killed with SIGKILL at the
    failpoint, if one is given): its exit status (-9 when killed) and output."""
    import multiprocessing
    import tempfile

    env = {k: v for k, v in os.environ.items() if k != "CDP_FAILPOINT"}
    if failpoint:
        env["CDP_FAILPOINT"] = failpoint
    args = ["run", "--quiet", "-w", str(ws)]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = f"{tmp}/out", f"{tmp}/err"
        child = context.Process(target=_cdp_main, args=(args, env, out, err))
        child.start()
        child.join()
        return subprocess.CompletedProcess(
            [CDP, *args],
            child.exitcode,
            Path(out).read_text(errors="replace") if Path(out).exists() else "",
            Path(err).read_text(errors="replace") if Path(err).exists() else "",
        )


def _marts(ws: Path) -> dict[str, str]:
    """Each mart's rows, in order, less the columns naming the run that made them, and
    less int_unified_individuals_changed: whom the last run computed again, which after a
    kill is whom the rerun had left to do."""
    out = {}
    for p in sorted((ws / "lake" / "marts").glob("*.parquet")):
        if p.name == "int_unified_individuals_changed.parquet":
            continue
        # (a mart kept in parts is a folder: cdp.io.lake reads both)
        names = [d[0] for d in duckdb.execute(f"select * from {lake.scan(p)} limit 0").description]
        cols = [c for c in names if not c.endswith("run_id")]
        rows = duckdb.execute(
            f"select {', '.join(cols)} from {lake.scan(p)} order by all"
        ).fetchall()
        out[p.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def _links(ws: Path) -> list[tuple]:
    t = pq.read_table(ws / "lake" / "identity" / "unified_link_individual.parquet")
    cols = ["source_name", "source_record_id", "unified_individual_id"]
    return sorted(zip(*(t[c].to_pylist() for c in cols), strict=True))


def _latest_export(ws: Path) -> list[tuple]:
    runs = [p for p in (ws / "exports" / "email_high_value").iterdir() if p.is_dir()]
    latest = max(runs, key=lambda p: (p / "manifest.json").stat().st_mtime)
    return duckdb.execute(
        f"select * from read_csv('{latest / 'email_high_value.csv'}', header=true, "
        "all_varchar=true) order by all"
    ).fetchall()


def killed_then_rerun_equals_clean(clean: Path, tmp_path: Path, kills: tuple[str, ...]) -> None:
    """Kill a copy of the clean workspace at each point in turn, run it to the end, and
    compare it with the clean run."""
    ws = tmp_path / "ws"
    ws.mkdir()
    # The same configuration and landed files as the clean run, and its saved model.
    for name in ("cdp.yml", "identity_model.json"):
        if (clean / name).exists():
            shutil.copy2(clean / name, ws / name)
    for folder in ("sources", "segments", "activations", "landing"):
        shutil.copytree(clean / folder, ws / folder)

    for point in kills:
        killed = _run(ws, point)
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-2000:])
    done = _run(ws)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    assert _marts(ws) == _marts(clean)
    assert _links(ws) == _links(clean)
    assert _latest_export(ws) == _latest_export(clean)
    leftovers = [str(p.relative_to(ws)) for p in ws.rglob(f"{TMP_PREFIX}*")]
    assert leftovers == []
    assert not list((ws / "lake" / "identity").glob("*.pending.*"))
    # Every history event once.
    for table, key in (
        ("identity/identity_history.parquet", "run_id, unified_individual_id, event"),
        (
            "marts/segment_membership_history/*.parquet",
            "run_id, segment_name, unified_individual_id",
        ),
    ):
        path = ws / "lake" / table
        dupes = duckdb.execute(
            f"select count(*) from (select {key} from read_parquet('{path}') "
            "where run_id is not null group by all having count(*) > 1)"
        ).fetchone()[0]
        assert dupes == 0, table
        runs = duckdb.execute(
            # (an empty history file holds dbt's one all-null row)
            f"select distinct run_id from read_parquet('{path}') where run_id is not null"
        ).fetchall()
        # One run filed the changes; the runs after it found nothing new to file.
        assert len(runs) == 1, (table, runs)
