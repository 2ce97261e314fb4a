"""Python's garbage collector set for the pipeline's processes.

A run allocates in bulk (identity builds millions of small objects, dbt a manifest of
thousands of nodes), and the objects its imports made live as long as it does. With
Python's defaults (700, 10, 10) a 1M increment spent 1.2 s collecting in `cdp run` and
0.6 s in each dbt build, much of it walking the imported objects again in every full
collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Collections less often: 50,000 new objects before a young one (Python: 700).
RUN_THRESHOLDS = (50_000, 20, 10)


@contextlib.contextmanager
def for_a_run() -> Iterator[None]:
    """While the block runs, what exists now is frozen (full collections skip it) and the
    thresholds are RUN_THRESHOLDS; both are given back afterwards, after a failure too,
    for whoever runs a pipeline in-process. Over a 1M increment, `cdp run`'s collections
    took 0.4 s against 1.2 s, and its peak rose by 0.1 GB."""
    thresholds, frozen_before = gc.get_threshold(), gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen_before:  # a host that froze its own objects keeps them frozen
            gc.unfreeze()


def for_forked_children() -> None:
    """In a process that forks workers (the warm dbt): what it imported is frozen, so a
    child's full collections skip it and leave the pages it shares with this process
    unwritten, and the children collect less often. A 1M increment's two dbt builds
    spent 0.3 s collecting, against 0.8 s with the freeze alone and 1.3 s with neither."""
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
