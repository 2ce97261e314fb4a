"""Spark as the engine (cdp.yml `engine: spark`): the session, the UDFs, dbt on Spark.

Nothing here is imported on the DuckDB path: pyspark is an extra (`pip install .[spark]`).
"""
