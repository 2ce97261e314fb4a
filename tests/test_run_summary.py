"""The lake totals printed after a run (cdp.cli.render.lake_summary)."""

from __future__ import annotations

import pyarrow as pa

from cdp.cli.render import lake_summary
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace


def test_segment_sizes_leave_out_dbts_empty_model_row(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    path = ws.marts_dir / "segment_membership.parquet"
    # no member anywhere: dbt-duckdb writes an external model as one all-null row
    write_parquet(
        path,
        pa.table(
            {
                "segment_name": pa.array([None], pa.string()),
                "unified_individual_id": pa.array([None], pa.string()),
            }
        ),
    )
    assert lake_summary(ws)["segments"] == {}
    write_parquet(
        path,
        pa.table(
            {"segment_name": ["vip", "vip", "new"], "unified_individual_id": ["U1", "U2", "U3"]}
        ),
    )
    assert lake_summary(ws)["segments"] == {"new": 1, "vip": 2}
