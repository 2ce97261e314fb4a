"""One run at a time per workspace: `<workspace>/.cdp/run.lock`.

Two runs at once would write the same lake files and fight over dbt's DuckDB file
(one writer per file). The lock is an flock on the file, so the kernel releases it
when the holder dies, however it dies: a lock left by a dead process is simply taken
over. The file also holds {pid, started_at, host}, only to tell a waiting user who
holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cdp.errors import CdpError
from cdp.workspace import Workspace


@dataclass(frozen=True)
class Holder:
    pid: int | None
    started_at: str
    host: str

    def describe(self, started: str = "started") -> str:
        pid = f"pid {self.pid}" if self.pid else "pid unknown"
        host = "" if self.host in ("", socket.gethostname()) else f" on {self.host}"
        return f"{pid}{host}, {started} {self.started_at or 'at an unknown time'}"


def lock_path(ws: Workspace) -> Path:
    return ws.state_dir / "run.lock"


# The lock files this process holds. `cdp run` holds the lock and runs Dagster in the
# same process, whose resource takes it again for runs the UI or the sensor start: a
# second flock of the same file from this process would wait for itself.
_held: set[Path] = set()


def read_holder(path: Path) -> Holder:
    """Who wrote the lock file last; blanks when it is empty or half written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid = data.get("pid")
    return Holder(
        pid=pid if isinstance(pid, int) else None,
        started_at=str(data.get("started_at") or ""),
        host=str(data.get("host") or ""),
    )


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def run_lock(
    ws: Workspace,
    *,
    wait: bool = True,
    on_wait: Callable[[Holder], None] | None = None,
    busy_hint: str = "try again later or use without --no-wait",
) -> Iterator[Path]:
    """Hold the workspace's run lock for the duration of the block.

    If another process holds it: with `wait`, call `on_wait(holder)` once and block
    until it is free; without, raise CdpError naming the holder and the lock file, and
    ending with `busy_hint` (what the command that could not wait can do).
    Held by this process already, the block runs under that hold.
    """
    path = lock_path(ws)
    if path.resolve() in _held:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open makes a non-inheritable descriptor: dbt and other child processes do not
    # carry the lock with them and keep it alive after this process ends.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_flock(fd):
            holder = read_holder(path)
            if not wait:
                raise CdpError(f"another run ({holder.describe()}) holds {path}; {busy_hint}")
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        _held.add(path.resolve())
        try:
            yield path
        finally:
            _held.discard(path.resolve())
            os.ftruncate(fd, 0)  # a finished run leaves no stale holder behind
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def current_holder(ws: Workspace) -> Holder | None:
    """The holder while a run holds the lock, else None. Never waits, never takes it."""
    path = lock_path(ws)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _try_flock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return read_holder(path)
    finally:
        os.close(fd)
