"""The SparkSession the pipeline runs on, configured from cdp.yml `spark:` and the
environment, with the CDP functions registered.

Some properties are not a matter of taste: the SQL of the dbt project and the Parquet
the lake holds assume them, so they are set whatever the configuration says
(REQUIRED_CONF). Everything else in `spark.conf` is passed on as given.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cdp.config.settings import SparkSettings
from cdp.errors import CdpError

# The SQL and the lake assume these (docs/scale-out.md):
REQUIRED_CONF = {
    # Timestamps are wall-clock times in UTC, as DuckDB reads and writes them: a
    # TIMESTAMP is TIMESTAMP_NTZ, and Parquet holds INT64 microseconds.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # dbt-spark sets ANSI mode off for every statement it runs; identity resolution runs
    # with the same semantics (the generated models quote with backticks, dbt_codegen).
    "spark.sql.ansi.enabled": "false",
    # Raw loads of one source may differ by a column added later (DuckDB: union_by_name).
    "spark.sql.parquet.mergeSchema": "true",
    # No _SUCCESS marker beside the Parquet parts of a model.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}
# Defaults that suit one machine; cdp.yml `spark.conf` overrides them.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.python.worker.reuse": "true",
}


def spark_missing_message() -> str:
    return "engine spark needs the spark extra: pip install '.[spark]' (in a checkout: make spark)"


def check_engine() -> None:
    """Fail early, in one line, when `engine: spark` cannot run here."""
    import importlib.util

    if (
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("dbt.adapters.spark") is None
    ):
        raise CdpError(spark_missing_message())
    check_sqlglot()


def check_sqlglot() -> None:
    """Splink's Spark dialect subclasses sqlglot's, which the compiled sqlglot (the
    `sqlglotc` package, pulled in by dagster-dbt's sqlglot[rs]) does not allow."""
    import importlib.util

    if importlib.util.find_spec("sqlglotc") is not None or _sqlglot_compiled():
        raise CdpError(
            "engine: spark needs the interpreted sqlglot, but sqlglotc (compiled sqlglot) is "
            "installed: pip uninstall -y sqlglotc (make spark does it; docs/scale-out.md)"
        )


def _sqlglot_compiled() -> bool:
    import sqlglot.expressions as e

    return not str(getattr(e, "__file__", "")).endswith(".py")


def build_conf(spark: SparkSettings, scratch: Path) -> dict[str, str]:
    """Every property the session is built with, in order of precedence."""
    from splink.backends.spark import similarity_jar_location

    conf = {**DEFAULT_CONF, **spark.conf}
    jars = [similarity_jar_location(), *filter(None, conf.get("spark.jars", "").split(","))]
    conf["spark.jars"] = ",".join(dict.fromkeys(jars))
    # Managed tables (dbt seeds) and Derby's files stay in the workspace's scratch folder.
    conf.setdefault("spark.sql.warehouse.dir", str(scratch / "warehouse"))
    conf.setdefault("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch}")
    conf.update(REQUIRED_CONF)
    return conf


def get_spark(spark: SparkSettings, scratch: Path, app_name: str = "cdp"):
    """The process's SparkSession: created on first use, reused after (getOrCreate)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CdpError(spark_missing_message()) from None
    check_sqlglot()
    # Python UDFs run in worker processes: the same interpreter as this one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    scratch.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name).master(spark.master)
    for key, value in build_conf(spark, scratch).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("CDP_SPARK_LOG_LEVEL", "ERROR"))
    from cdp.spark.udfs import register_udfs

    register_udfs(session)
    return session


def workspace_spark(ws, app_name: str = "cdp"):
    """The SparkSession for a workspace, from its cdp.yml and the environment."""
    from cdp.config.settings import load_settings

    settings = load_settings(ws.settings_file)
    return get_spark(settings.spark.resolved(), ws.tmp_dir / "spark", app_name)
