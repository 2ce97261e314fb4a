"""A Dagster server started by a test (`dagster-webserver`, or `dagster dev` with its
daemon) in its own process group: its address, process and log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import free_port

STARTUP_SECONDS = 90
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_tail(self) -> str:
        return "".join(deque(self.log.open(errors="replace"), maxlen=30))

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body["errors"]
        return body["data"]


def wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(
                f"the Dagster server exited ({server.proc.returncode}):\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the Dagster server did not answer in {STARTUP_SECONDS} s:\n{server.log_tail()}")


def start(command: list[str], workspace: Path, home: Path, log: Path) -> Server:
    """Start `command` (`dagster-webserver` or `dagster dev`, and their `-m` argument)
    on a free port over `workspace`, Dagster's instance in `home`, its output in `log`;
    return once it answers. It runs in its own process group, so the code servers and
    the daemon it starts are stopped (or killed) with it: os.killpg(server.proc.pid)."""
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CDP_WORKSPACE": str(workspace),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_until_up(server)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return server
