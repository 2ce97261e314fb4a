"""Write one chunk's rows in each source's own format, deterministically."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.io.atomic import atomic_path

# Parquet sources are typed the way an ERP export would be.
PARQUET_SCHEMAS = {
    "ecommerce_orders": {
        "order_id": pl.String,
        "account_id": pl.String,
        "order_ts": pl.Datetime("us"),
        "status": pl.String,
        "channel": pl.String,
        "total": pl.Float64,
        "currency": pl.String,
    },
    "ecommerce_order_lines": {
        "order_id": pl.String,
        "line_no": pl.Int32,
        "sku": pl.String,
        "qty": pl.Int32,
        "unit_price": pl.Float64,
        "line_total": pl.Float64,
    },
    "products": {"sku": pl.String, "name": pl.String, "category": pl.String, "price": pl.Float64},
}


def write_rows(path: Path, source: str, fmt: str, columns: dict[str, list]) -> int:
    if fmt == "parquet":
        df = pl.DataFrame(columns, schema=PARQUET_SCHEMAS[source], strict=False)
    else:
        df = pl.DataFrame(columns, schema={k: pl.String for k in columns}, strict=False)
    with atomic_path(path) as tmp:
        if fmt == "csv":
            df.write_csv(tmp, quote_style="necessary")
        elif fmt == "jsonl":
            df.write_ndjson(tmp)
        else:
            # pyarrow with fixed options: identical bytes for identical rows.
            pq.write_table(df.to_arrow(), tmp, compression="zstd", write_statistics=True)
    return df.height


class TruthWriter:
    """Streams ground-truth rows chunk by chunk into one Parquet file."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, schema, compression="zstd")

    def write(self, columns: dict[str, list]) -> None:
        if columns and len(next(iter(columns.values()))):
            self._writer.write_table(pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)
