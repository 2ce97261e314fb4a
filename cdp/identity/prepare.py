"""Read the identity input: one row per source person record with its match keys.

The keys are made in dbt (model int_person_records_prepared: normalised, tested and in
the lineage); this module only reads that model and the logged-in cookies.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from cdp.errors import CdpError
from cdp.io import lake
from cdp.workspace import Workspace

RECORDS = "int_person_records_prepared"
VISITORS = "int_anonymous_visitors_linked"
INPUTS = (RECORDS, VISITORS)
MEMORY = "1GB"  # DuckDB's share while Splink and the clustering hold the records
SORT_MEMORY = "3GB"


def connect_inputs(ws: Workspace) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"memory_limit": MEMORY})
    for name in INPUTS:
        path = ws.harmonised_dir / f"{name}.parquet"
        if not path.exists():
            raise CdpError(
                f"identity resolution needs {path.name}: run the harmonisation (dbt) first"
            )
        con.execute(f"create view {name} as select * from {lake.scan(path)}")
    return con


def build_records(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The records sorted by unique_id, each with its index `_i` (its row number)."""
    # dbt-duckdb writes an empty external model as one all-null row: skip it. The sort
    # gets more memory than the connection's other queries: under 1 GB it spills, and at
    # a million records took 2.3 s against 1.5 s. Nothing else is held yet, so this is
    # not the stage's peak.
    con.execute(f"set memory_limit = '{SORT_MEMORY}'")
    try:
        records = con.sql(
            f"select * from {RECORDS} where unique_id is not null order by unique_id"
        ).to_arrow_table()
    finally:
        con.execute(f"set memory_limit = '{MEMORY}'")
    # Numbered here: a row_number() window sorts a second time (15 s against 4 s at a
    # million records).
    return records.add_column(0, "_i", pa.array(np.arange(records.num_rows, dtype=np.int64)))


def cookie_links() -> str:
    """SQL over a connect_inputs connection: anonymous_id -> the person record it logged
    into (unique_id), with login counts."""
    return f"""
        select anonymous_id, individual_source_name || ':' || individual_source_record_id as unique_id,
            login_events, last_login_ts
        from {VISITORS}
        where anonymous_id is not null
        """
