"""Which allocator Arrow uses in this project's processes.

pyarrow allocates with mimalloc unless told otherwise. In identity resolution, which
builds and drops Arrow tables of millions of rows one after another, that cost a fifth
of the stage's CPU in the kernel: pages handed back to the system and taken again are
zeroed again each time (`perf` on a 1M increment: `clear_page_erms` under huge-page
faults, 21% of samples). With the system's malloc the same stage spent 6.3 to 7.7 s in
the kernel instead of 10.2 to 10.9 s, and took 20.4 s on average instead of 22.7 s
(five runs each, alternating), with less peak memory (4.2 GB against 4.3 GB). jemalloc
did about as well; the system's is in every build. DuckDB has its own allocator: the
profile store, DuckDB work, took the same time with either.

Arrow reads the choice once, when something first allocates, so it is made when `cdp`
is imported: before the pipeline, Dagster's run workers or a notebook that imports cdp
first touch Arrow. A value already in the environment wins.
"""

import os

VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
ALLOCATOR = "system"


def choose_allocator() -> None:
    os.environ.setdefault(VARIABLE, ALLOCATOR)
