"""Named points where a test may kill the whole process with SIGKILL, to prove that a
run killed anywhere and run again gives what one clean run gives (tests/crash.py).

`CDP_FAILPOINT=<name>` arms one point; `<name>@<n>` fires on its n-th pass (1-based),
so a point inside a loop can be hit mid-way. Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_passes: dict[str, int] = {}


def reached(name: str) -> None:
    armed = os.environ.get("CDP_FAILPOINT")
    if not armed:
        return
    point, _, nth = armed.partition("@")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
