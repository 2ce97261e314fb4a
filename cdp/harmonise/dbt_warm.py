"""A warm dbt: dbt imported once per pipeline run, each dbt command forked from it.

Every `dbt` process first imports dbt, about 1.5 s of one core (its dataclasses build
their serialisers as they are defined), and a run starts two (harmonise, marts), more
when the definitions need parsing. So `run_pipeline` starts one process that imports
dbt and waits (`serve`), on the other core while the run plans and ingests. `cdp-dbt`,
which dagster-dbt starts for each dbt command, then hands that process the command, its
environment, its working folder and its standard streams (passed over a Unix socket), and
the warm process forks a child that runs the command as `dbt` would. The child reports
its pid first and its exit status last; `cdp-dbt` exits with that status, so to Dagster
it is dbt.

Lifetimes, so that a killed run leaves nothing writing the lake: the warm process dies
with the process that started it, and a child with the warm process (PR_SET_PDEATHSIG);
a child whose `cdp-dbt` is gone (killed) stops at once (its socket closes); SIGINT and
SIGTERM sent to `cdp-dbt` (Dagster interrupting dbt) are passed on to the child. Only the
user running the pipeline may connect (the socket's peer credentials are checked).

Linux only (abstract sockets, PR_SET_PDEATHSIG). Elsewhere, on Spark, and whenever the
warm process cannot be reached, `cdp-dbt` runs dbt itself, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from cdp import collector
from cdp.harmonise.dbt_child import _die_with_parent

# The warm process's socket (the name of an abstract address) and pid, for `cdp-dbt`.
ADDRESS_VAR = "CDP_DBT_WARM"
PID_VAR = "CDP_DBT_WARM_PID"
# How long `cdp-dbt` waits for a warm process still importing dbt.
READY_TIMEOUT = 30.0
_LENGTH = struct.Struct("!I")
_INT = struct.Struct("!q")


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


@contextlib.contextmanager
def warm_dbt(engine: str = "duckdb") -> Iterator[None]:
    """While the block runs, dbt commands started through `cdp-dbt` fork from one warm
    process (set in this process's environment, which dagster-dbt passes on). Only for
    the DuckDB engine: on Spark, `cdp-dbt` runs dbt in its own SparkSession."""
    if engine != "duckdb" or not supported() or os.environ.get(ADDRESS_VAR):
        yield
        return
    # an abstract socket's name (its address is the name after a NUL byte, which an
    # environment variable cannot hold)
    address = f"cdp-dbt-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "cdp.harmonise.dbt_warm", address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:  # no process to spare: each dbt command starts its own, as before
        yield
        return
    os.environ[ADDRESS_VAR], os.environ[PID_VAR] = address, str(process.pid)
    try:
        yield
    finally:
        os.environ.pop(ADDRESS_VAR, None)
        os.environ.pop(PID_VAR, None)
        process.kill()
        process.wait()


# --- the warm process --------------------------------------------------------------------


def serve(address: str) -> None:
    """Import dbt, then fork a child for each command sent to `address`."""
    _die_with_parent()
    from multiprocessing import resource_tracker

    # dbt's command line, and the adapter it loads first thing
    import dbt.adapters.duckdb
    import dbt.cli.main  # noqa: F401

    _warm_caches()

    # dbt's semaphores are registered with multiprocessing's tracker process. Started
    # here, it is shared by every child and speaks only to this process's (discarded)
    # output: one started by a child would report the semaphores of a child that ends
    # with os._exit as leaked, into dbt's output, which Dagster reads.
    resource_tracker.ensure_running()
    # dbt's imported objects frozen before the children fork (cdp/collector.py)
    collector.for_forked_children()
    # Children are reaped by the kernel; each child sets this back for dbt's own use.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + address)  # bound only now: a connection means dbt is imported
    listener.listen(8)
    while True:
        conn, _ = listener.accept()
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        if os.fork() == 0:
            listener.close()
            _child(conn, request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        conn.close()


def _warm_caches() -> None:
    """What each dbt command would otherwise build for itself, built once here for every
    child: the task and parser modules a build imports, this project's DuckDB plugin, and
    the JSON schemas dbt checks the project, profile and selectors against (mashumaro
    builds a schema on its first use, 0.2 to 0.3 s for these). A one-model `dbt build`
    took 1.5 s after dbt's import, 1.05 s after these. Only a saving: if a later dbt
    moves them, commands build them as before."""
    try:
        import daff  # noqa: F401
        import dbt.compilation
        import dbt.parser.manifest
        import dbt.task.build  # noqa: F401
        import sqlparse  # noqa: F401
        from dbt.adapters.duckdb.credentials import DuckDBCredentials
        from dbt.contracts.project import (
            Configuration,
            PackageConfig,
            ProfileConfig,
            Project,
            ProjectFlags,
        )
        from dbt.contracts.selection import SelectorFile

        import cdp.harmonise.duckdb_plugin  # noqa: F401

        for schema in (
            ProjectFlags,
            DuckDBCredentials,
            ProfileConfig,
            Project,
            PackageConfig,
            SelectorFile,
            Configuration,
        ):
            schema.json_schema()
    except (ImportError, AttributeError):
        pass


def _skip_manifest_write() -> None:
    """A `dbt build` writes manifest.json twice (after loading the project, and at its
    end), 0.3 s a build on this project. The pipeline's builds run after `prepare`
    parsed the project and wrote it, and they parse nothing again (partial parsing),
    so both writes would rewrite what is there; run_results.json, which failures are
    read from, is still written. A build that did parse again left a new partial-parse
    file, which makes the next `prepare` parse and write the manifest afresh."""
    import dbt.parser.manifest
    import dbt.task.runnable

    def keep(*_args, **_kwargs) -> None:
        return None

    dbt.parser.manifest.write_manifest = keep
    dbt.task.runnable.write_manifest = keep


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    _pid, uid, _gid = struct.unpack(
        "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    )
    if uid != os.getuid():
        raise ValueError(f"a connection from uid {uid}")
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError("no standard streams")
    while len(data) < _LENGTH.size or len(data) < _LENGTH.size + _LENGTH.unpack_from(data)[0]:
        more = conn.recv(1 << 16)
        if not more:
            raise ValueError("a request cut short")
        data += more
    (length,) = _LENGTH.unpack_from(data)
    return json.loads(data[_LENGTH.size : _LENGTH.size + length]), fds


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    code, announced = 1, False
    try:
        _die_with_parent()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # dbt stops on SIGINT as a KeyboardInterrupt, as Dagster stops it. A warm process
        # started with SIGINT ignored (nohup, a daemon, a test runner's worker) would
        # hand that on to every child, and none could be interrupted.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # a line at a time, as Dagster reads dbt's events from the pipe
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        conn.sendall(_INT.pack(os.getpid()))
        announced = True
        # `cdp-dbt` sends nothing more: the socket closes only when it is gone.
        threading.Thread(target=_exit_when_closed, args=(conn,), daemon=True).start()
        sys.argv = ["dbt", *request["args"]]
        if request["args"][:1] == ["build"]:
            _skip_manifest_write()
        try:
            code = _run_dbt()
        except SystemExit as exit_:
            code = _status(exit_.code)
        except KeyboardInterrupt:  # what a shell reports for a process SIGINT stopped
            code = 128 + signal.SIGINT
    finally:
        # What a dbt process does as it exits (the phone numbers it read are saved for
        # the next run, cdp.harmonise.phone_cache), before `cdp-dbt` is told it ended.
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if announced:  # else `cdp-dbt`, told nothing, runs dbt itself
            with contextlib.suppress(OSError):
                conn.sendall(_INT.pack(code))
        os._exit(code)


def _exit_when_closed(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os._exit(1)


def _run_dbt() -> int:
    """dbt's command line in this process, as the `dbt` script runs it."""
    from dbt.cli.main import cli

    try:
        returned = cli()
    except SystemExit as exit_:
        returned = exit_.code
    return _status(returned)


def _status(code: object) -> int:
    """An exit status as sys.exit makes it of `code`."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


# --- cdp-dbt's side ------------------------------------------------------------------------


def run_warm(args: list[str]) -> int | None:
    """Run a dbt command in a child of the warm process; its exit status, or None when
    there is no warm process to reach (the caller then runs dbt itself)."""
    address = os.environ.get(ADDRESS_VAR)
    if not address or not supported():
        return None
    conn = _connect(address, os.environ.get(PID_VAR))
    if conn is None:
        return None
    env = {k: v for k, v in os.environ.items() if k not in (ADDRESS_VAR, PID_VAR)}
    payload = json.dumps({"args": args, "env": env, "cwd": os.getcwd()}).encode()
    try:
        socket.send_fds(conn, [_LENGTH.pack(len(payload)) + payload], [0, 1, 2])
        child = _read_int(conn)
    except OSError:
        return None
    if child is None:
        return None  # refused before forking: run dbt here
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: _forward(child, signum))
    code = _read_int(conn)
    # no status: the child was killed before it could send one
    return 1 if code is None else code


def _connect(address: str, pid: str | None) -> socket.socket | None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect("\0" + address)
            return conn
        except (ConnectionRefusedError, FileNotFoundError):
            conn.close()
        # not listening yet: still importing dbt, unless it has died
        if not pid or not _alive(int(pid)) or time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) is not listening either
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _read_int(conn: socket.socket) -> int | None:
    data = b""
    while len(data) < _INT.size:
        try:
            more = conn.recv(_INT.size - len(data))
        except InterruptedError:
            continue
        if not more:
            return None
        data += more
    return _INT.unpack(data)[0]


def _forward(child: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signum)


if __name__ == "__main__":
    serve(sys.argv[1])
