"""dbt on Spark: dbt-spark's `session` method runs every statement through the process's
SparkSession (SparkSession.builder.getOrCreate()), so the session is built here first,
from the workspace's cdp.yml and the environment, with the CDP functions registered
(cdp.spark.udfs), and dbt runs in this same process.

The dbt project reads and writes the lake by path (macros/engine/spark_lake.sql), so no
metastore is needed and nothing carries over between two dbt runs but the Parquet files.
"""

from __future__ import annotations

import os
import shutil


def run_dbt_in_session(args: list[str]) -> int:
    from cdp.workspace import resolve_workspace

    ws = resolve_workspace(os.environ["CDP_WORKSPACE"])
    # A scratch folder of this run's own: dbt seeds are managed tables, and Spark refuses
    # to create one over the folder a previous process left.
    scratch = ws.tmp_dir / "spark" / f"dbt-{os.getpid()}"
    try:
        from cdp.config.settings import load_settings
        from cdp.spark.session import get_spark

        settings = load_settings(ws.settings_file)
        spark = get_spark(settings.spark.resolved(), scratch, app_name="cdp-dbt")
        try:
            from dbt.cli.main import dbtRunner

            result = dbtRunner().invoke(args)
        finally:
            spark.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.exception is not None and result.result is None:
        print(f"dbt: {result.exception}")
        return 2
    return 0 if result.success else 1
