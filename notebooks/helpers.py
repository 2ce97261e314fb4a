"""Shared by the analyst notebooks: the read-only catalog, queries as polars frames, and
altair charts rendered offline to PNG through vl-convert (no browser, no network).

- `q(sql)`: a query over the catalog (cdp.catalog.connect_catalog: read-only, sandboxed
  to the workspace's lake, the same as `cdp sql`) as a polars DataFrame;
- `show(chart, name)`: renders the chart to PNG and displays it. With $CDP_CHART_DIR set
  the PNG is also written there as `<name>.png` (the tests check every one). A chart
  without rows says so; with $CDP_NOTEBOOK_STRICT=1 (the tests) it is an error.

The workspace is $CDP_WORKSPACE (set by `make notebooks`), else ./data, else ../data.
"""

from __future__ import annotations

import os
from pathlib import Path

import altair as alt
import polars as pl
import vl_convert

from cdp.catalog import connect_catalog
from cdp.workspace import Workspace, resolve_workspace


def workspace() -> Workspace:
    if os.environ.get("CDP_WORKSPACE") or Path("data", "cdp.yml").exists():
        return resolve_workspace()
    return resolve_workspace(Path("..", "data").resolve())  # opened from notebooks/


ws = workspace()
con = connect_catalog(ws)


def q(sql: str) -> pl.DataFrame:
    """A query as a polars frame; DECIMAL amounts and HUGEINT sums become plain numbers,
    which charts can encode."""
    df = con.sql(sql).pl()
    casts = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Decimal):
            casts.append(pl.col(name).cast(pl.Int64 if dtype.scale == 0 else pl.Float64))
        elif dtype == pl.Int128:
            casts.append(pl.col(name).cast(pl.Int64))
    return df.with_columns(casts)


def tables() -> set[str]:
    return {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}


class EmptyChart(AssertionError):
    pass


def _rows(spec: dict) -> int:
    datasets = spec.get("datasets") or {}
    inline = (spec.get("data") or {}).get("values")
    counts = [len(v) for v in datasets.values()] + ([len(inline)] if inline is not None else [])
    return min(counts) if counts else 0


def show(chart: alt.TopLevelMixin, name: str, scale: float = 1.5):
    """Render `chart` to PNG (vl-convert), save it under $CDP_CHART_DIR, display it."""
    from IPython.display import Image

    spec = chart.to_dict()
    if _rows(spec) == 0:
        if os.environ.get("CDP_NOTEBOOK_STRICT") == "1":
            raise EmptyChart(f"chart {name!r} has no rows")
        print(f"(no rows for chart {name!r} in this workspace)")
        return None
    png = vl_convert.vegalite_to_png(chart.to_json(), scale=scale)
    out = os.environ.get("CDP_CHART_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.png").write_bytes(png)
    return Image(data=png)
