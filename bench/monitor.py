"""Run a command and measure its wall time and the peak memory of its whole process tree."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.1) -> Measured:
    """Sample RSS of the command and all its children every `interval` seconds."""
    started = time.perf_counter()
    popen = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    proc = psutil.Process(popen.pid)
    peak = 0
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(popen.stdout.read()), daemon=True)
    reader.start()
    while popen.poll() is None:
        try:
            peak = max(peak, _tree_rss(proc))
        except psutil.NoSuchProcess:
            break
        time.sleep(interval)
    popen.wait()
    reader.join()
    return Measured(
        seconds=time.perf_counter() - started,
        peak_rss_mb=peak / 2**20,
        returncode=popen.returncode,
        output="".join(chunks),
    )
