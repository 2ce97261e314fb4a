"""CDP lakehouse: a local-first customer data platform on Parquet, DuckDB, dbt, Dagster and Splink."""

__version__ = "0.1.0"
