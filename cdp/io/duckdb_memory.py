"""How much memory DuckDB inside dbt keeps for its buffers between models.

By default DuckDB hands a freed buffer back to the system, so the next model that needs
one takes fresh pages the kernel has to zero first. In a 1M build of the marts, 22% of
the dbt process's CPU was in the kernel, most of it page faults and `madvise` (`perf`).
DuckDB's block allocator (`block_allocator_memory`) instead keeps the buffers it has
touched, up to a size, for the life of the database: that process exits with the build.
With two thirds of the memory ceiling, the same 1M marts build took 38.4 s instead of
42.0 s (two runs each, alternating), 11.4 s instead of 17.0 s in the kernel, with the
same peak memory (3.27 GB); the whole ceiling was no faster, a third was half the gain.
The harmonise build gained less (29.3 -> 28.8 s). In a whole 1M increment (`cdp run`
on a restored lake), the marts step took 29.4 to 29.6 s instead of 32.4 to 33.9 s, and
harmonise 19.5 to 20.6 s instead of 20.6 to 21.4 s. The profile store, DuckDB work in
the `cdp` process, took the same time either way, so only dbt's DuckDB is set.

The buffers still count against the memory ceiling (`CDP_DBT_MEMORY_LIMIT`), so the
peak does not grow. `CDP_DBT_BLOCK_MEMORY` in the environment overrides the share
(`0` turns it off).
"""

from __future__ import annotations

import os
import re

VARIABLE = "CDP_DBT_BLOCK_MEMORY"
SHARE = 2 / 3
OFF = "0 bytes"

# DuckDB's size units: KB, MB, ... are powers of 1000; KiB, MiB, ... of 1024.
_UNITS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def size_in_bytes(size: str) -> int | None:
    """A DuckDB size (`3GB`, `512 MiB`, `1000000`) in bytes; None for anything else,
    such as a share of the machine (`80%`)."""
    match = _SIZE.fullmatch(size)
    if not match or match[2].lower() not in _UNITS:
        return None
    return int(float(match[1]) * _UNITS[match[2].lower()])


def block_allocator_memory(memory_limit: str) -> str:
    """The `block_allocator_memory` setting for a DuckDB with this memory ceiling: the
    user's `CDP_DBT_BLOCK_MEMORY`, else two thirds of the ceiling; off when the ceiling
    is not a size."""
    chosen = os.environ.get(VARIABLE, "").strip()
    if chosen:
        return OFF if chosen == "0" else chosen
    limit = size_in_bytes(memory_limit)
    if not limit:
        return OFF
    return f"{int(limit * SHARE) // 1024**2}MiB"
