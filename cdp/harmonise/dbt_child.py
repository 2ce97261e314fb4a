"""`cdp-dbt`: dbt, tied to the life of the process that started it.

Dagster starts dbt as a child process. If `cdp run` is killed (SIGKILL, an OOM kill), an
ordinary child goes on writing the lake for as long as its models take, and a rerun
started meanwhile would write the same files. On Linux, this launcher asks the kernel
to kill it when its parent dies (PR_SET_PDEATHSIG), then becomes dbt (exec), keeping
the request. Elsewhere it simply runs dbt.
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


def main() -> None:
    _die_with_parent()
    dbt = dbt_path()
    os.execv(dbt, [dbt, *sys.argv[1:]])


if __name__ == "__main__":
    main()
