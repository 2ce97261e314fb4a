"""The warm dbt (cdp/harmonise/dbt_warm.py): `cdp-dbt` hands its command to a process
that imported dbt once, which forks a child to run it. Real processes and sockets; the
command the child runs is a small stand-in for dbt's command line where the test needs
to see the child (its parent, its signals), and dbt itself otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cdp.harmonise import dbt_warm

pytestmark = pytest.mark.skipif(not dbt_warm.supported(), reason="Linux only")

LAUNCHER = str(Path(sys.executable).parent / "cdp-dbt")

# The warm process with dbt's command line replaced by a stand-in: `ppid` prints the
# child's parent, `exit N` exits with N, `sleep` writes its pid to the file named by
# STAND_IN_PID and waits (SIGINT stops it, as it stops dbt: KeyboardInterrupt).
STAND_IN = textwrap.dedent(
    """
    import os, sys, time
    from cdp.harmonise import dbt_warm

    def run():
        command = sys.argv[1:]
        if command[0] == "ppid":
            print(os.getppid(), os.environ.get("ONLY_IN_THE_LAUNCHER"), os.getcwd())
            return 0
        if command[0] == "exit":
            return int(command[1])
        with open(os.environ["STAND_IN_PID"], "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(60)
        return 0

    dbt_warm._run_dbt = run
    dbt_warm.serve(sys.argv[1])
    """
)


@pytest.fixture
def warm(monkeypatch):
    """A warm process running the stand-in, its address set as `warm_dbt` sets it. It is
    started with SIGINT ignored, as a daemon or a test runner's worker may start it: its
    children must stop on SIGINT all the same."""
    address = f"cdp-dbt-test-{os.getpid()}-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, address],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    monkeypatch.setenv(dbt_warm.ADDRESS_VAR, address)
    monkeypatch.setenv(dbt_warm.PID_VAR, str(process.pid))
    yield process
    process.kill()
    process.wait()


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not dbt_warm._alive(pid):
            return True
        time.sleep(0.05)
    return False


def _wait_for(path: Path, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_a_command_runs_in_a_child_of_the_warm_process_with_the_launchers_streams(
    warm, tmp_path, monkeypatch
):
    monkeypatch.setenv("ONLY_IN_THE_LAUNCHER", "yes")
    out = subprocess.run(
        [LAUNCHER, "ppid"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    parent, env, cwd = out.stdout.split()
    # forked from the warm process, with the launcher's environment and folder
    assert (int(parent), env, cwd) == (warm.pid, "yes", str(tmp_path))
    failed = subprocess.run([LAUNCHER, "exit", "3"], capture_output=True, timeout=60)
    assert failed.returncode == 3


def test_a_killed_launcher_takes_its_child_with_it(warm, tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("STAND_IN_PID", str(pid_file))
    launcher = subprocess.Popen([LAUNCHER, "sleep"])
    child = _wait_for(pid_file)
    launcher.kill()
    launcher.wait()
    assert _gone_within(child, 5)
    assert warm.poll() is None  # the warm process serves the next command


def test_an_interrupt_reaches_the_child_and_its_status_the_caller(warm, tmp_path, monkeypatch):
    """As when Dagster interrupts dbt: SIGINT to `cdp-dbt` goes on to the child."""
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("STAND_IN_PID", str(pid_file))
    launcher = subprocess.Popen([LAUNCHER, "sleep"])
    child = _wait_for(pid_file)
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(timeout=10) == 130
    assert _gone_within(child, 5)


def test_the_warm_process_and_its_children_die_with_the_process_that_started_them(tmp_path):
    """A killed `cdp run` leaves no dbt writing the lake (PR_SET_PDEATHSIG, both levels)."""
    pid_file, warm_file = tmp_path / "child.pid", tmp_path / "warm.pid"
    starter = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        from cdp.harmonise import dbt_warm
        address = "cdp-dbt-test-starter-{os.getpid()}"
        warm = subprocess.Popen([sys.executable, "-c", {STAND_IN!r}, address])
        open({str(warm_file)!r}, "w").write(str(warm.pid))
        env = {{**os.environ, dbt_warm.ADDRESS_VAR: address, dbt_warm.PID_VAR: str(warm.pid),
               "STAND_IN_PID": {str(pid_file)!r}}}
        subprocess.Popen([{LAUNCHER!r}, "sleep"], env=env)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", starter])
    child = _wait_for(pid_file)
    warm = int(warm_file.read_text())
    process.kill()
    process.wait()
    assert _gone_within(warm, 5) and _gone_within(child, 5)


def test_without_a_warm_process_the_launcher_runs_dbt_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(dbt_warm.ADDRESS_VAR, "cdp-dbt-test-nobody-listens")
    monkeypatch.setenv(dbt_warm.PID_VAR, "999999999")
    out = subprocess.run([LAUNCHER, "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Core" in out.stdout, out.stdout + out.stderr


def test_dbt_itself_through_the_warm_process(tmp_path):
    """dbt's real command line, forked: its output and exit status as dbt's own."""
    with dbt_warm.warm_dbt():
        ok = subprocess.run([LAUNCHER, "--version"], capture_output=True, text=True, timeout=120)
        bad = subprocess.run(
            [LAUNCHER, "parse", "--project-dir", str(tmp_path / "none")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ok.returncode == 0 and "Core" in ok.stdout, ok.stdout + ok.stderr
    plain = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "parse",
            "--project-dir",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == plain.returncode != 0
