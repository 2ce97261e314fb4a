"""Spark in local mode, for the tests that run both engines.

They need the Spark extra (`make spark`, which `make test` runs); without pyspark they
are skipped, with the reason."""

from __future__ import annotations

import pytest

# Skipped only when pyspark cannot be imported: any other failure is a failure.
SKIP_REASON = "pyspark is not installed: the Spark extra (make spark, or pip install '.[spark]')"


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local SparkSession built as the pipeline builds it, with the CDP functions."""
    from cdp.config.settings import SparkSettings
    from cdp.spark.session import get_spark

    session = get_spark(SparkSettings(master="local[2]"), tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()
