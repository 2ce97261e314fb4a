"""`cdp-dbt`: dbt, tied to the life of the process that started it.

Dagster starts dbt as a child process. If `cdp run` is killed (SIGKILL, an OOM kill), an
ordinary child goes on writing the lake for as long as its models take, and a rerun
started meanwhile would write the same files. On Linux, this launcher asks the kernel
to kill it when its parent dies (PR_SET_PDEATHSIG), then becomes dbt (exec), keeping
the request. Elsewhere it simply runs dbt.

On Spark (CDP_DBT_TARGET=spark), it runs dbt in this process instead, inside a SparkSession
that has the CDP functions registered (cdp.spark.dbt_session).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def dbt_path() -> str:
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


# dbt commands that never open a connection: no Spark session for them.
_OFFLINE = {"parse", "ls", "list", "deps", "clean", "debug", "--version", "-v", "--help"}


def main() -> None:
    _die_with_parent()
    args = sys.argv[1:]
    if os.environ.get("CDP_DBT_TARGET") == "spark" and not (set(args[:1]) & _OFFLINE):
        # dbt-spark's `session` method uses this process's SparkSession: dbt runs here,
        # after the session is made and the CDP functions are registered in it.
        from cdp.spark.dbt_session import run_dbt_in_session

        sys.exit(run_dbt_in_session(args))
    # forked from the run's warm dbt when there is one
    from cdp.harmonise.dbt_warm import run_warm

    code = run_warm(args)
    if code is not None:
        sys.exit(code)
    dbt = dbt_path()
    os.execv(dbt, [dbt, *args])


if __name__ == "__main__":
    main()
