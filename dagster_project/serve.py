"""`python -m dagster_project.serve dagster dev ...`: run a Dagster command that SIGTERM stops.

Dagster makes SIGTERM do whatever SIGINT does (`setup_interrupt_handlers` in
dagster._utils.interrupts). A command started in the background by a non-interactive shell
(`make ui &`, a CI step, nohup) inherits SIGINT *ignored*, so under `dagster dev` the
webserver, the daemon and the code servers all ignore SIGTERM as well, and only SIGKILL
stops them. This puts SIGINT and SIGTERM back to their defaults and replaces itself with the
command (same pid), so Python installs its usual SIGINT handler in every Dagster process.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path


def resolve(command: str) -> str:
    """The command next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / command
    if local.exists():
        return str(local)
    found = shutil.which(command)
    if found is None:
        raise SystemExit(f"dagster_project.serve: command not found: {command}")
    return found


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m dagster_project.serve COMMAND [ARG...]")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(resolve(argv[0]), argv)


if __name__ == "__main__":
    main(sys.argv[1:])
