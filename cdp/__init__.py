"""CDP lakehouse: a local-first customer data platform on Parquet, DuckDB, dbt, Dagster and Splink."""

from cdp.io.arrow_memory import choose_allocator

__version__ = "0.1.0"

choose_allocator()
