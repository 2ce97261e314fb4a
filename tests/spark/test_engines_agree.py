"""One generated workspace through `cdp run`'s pipeline on DuckDB and on Spark (cdp.yml
`engine: spark`, local mode): the same unified individuals, segment members and export
rows. Unified ids are random per run, so individuals are compared as the partition of
source records they make, and segments and exports through those partitions."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest

from tests.spark.conftest import SKIP_REASON

pytest.importorskip("pyspark", reason=SKIP_REASON)
pytestmark = [pytest.mark.spark, pytest.mark.slow]

ENGINES = ("duckdb", "spark")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from typer.testing import CliRunner

    from cdp.cli.main import app
    from cdp.workspace import resolve_workspace
    from dagster_project.run import run_pipeline

    root = tmp_path_factory.mktemp("engines")
    cli = CliRunner()
    assert cli.invoke(app, ["init", str(root / "duckdb")]).exit_code == 0
    # The smallest demo that still fills every source, segment and the export.
    made = cli.invoke(
        app, ["generate", "--workspace", str(root / "duckdb"), "--customers", "60", "--seed", "7"]
    )
    assert made.exit_code == 0, made.output
    shutil.copytree(root / "duckdb", root / "spark")
    settings = root / "spark" / "cdp.yml"
    # engine and Spark settings from cdp.yml, as a user writes them; few partitions suit
    # a tiny workspace (the default suits a cluster).
    settings.write_text(
        settings.read_text().replace("engine: duckdb", "engine: spark", 1)
        + "\nspark:\n  master: local[2]\n  conf: {spark.sql.shuffle.partitions: 2}\n",
        encoding="utf-8",
    )
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CDP_ENGINE", raising=False)
        for engine in ENGINES:
            ws = resolve_workspace(root / engine)
            outcome = run_pipeline(ws)
            assert outcome.success, (engine, outcome.failed_steps, outcome.error)
            out[engine] = (ws, outcome)
    return out


def _people(ws) -> dict[str, frozenset[str]]:
    """unified id -> the source records in it."""
    rows = duckdb.execute(
        "select unified_individual_id, list(source_name || ':' || source_record_id) "
        f"from read_parquet('{ws.identity_dir / 'unified_link_individual.parquet'}') "
        "where record_kind = 'person' group by 1"
    ).fetchall()
    return {uid: frozenset(records) for uid, records in rows}


def _scan(path) -> str:
    from cdp.io.lake import scan

    return scan(path)


def test_spark_really_wrote_the_lake(runs):
    ws, _ = runs["spark"]
    # Spark writes a model as a folder of parts at DuckDB's path; DuckDB one file.
    assert (ws.marts_dir / "customer_360.parquet").is_dir()
    assert (runs["duckdb"][0].marts_dir / "customer_360.parquet").is_file()
    # Each run's segment history goes to its own path, named when the model runs
    # (dbt_models/macros/run.sql): on both engines, after the run's id.
    for engine in ENGINES:
        ws, outcome = runs[engine]
        history = ws.marts_dir / "segment_membership_history"
        assert (history / f"run={outcome.run_id}.parquet").exists(), sorted(history.iterdir())


def test_same_unified_individuals(runs):
    duck, spark = (_people(runs[e][0]) for e in ENGINES)
    assert sorted(duck.values(), key=sorted) == sorted(spark.values(), key=sorted)
    assert any(len(records) > 1 for records in duck.values())  # records were merged
    for engine in ENGINES:
        ws = runs[engine][0]
        profiles = duckdb.execute(
            f"select count(*) from {_scan(ws.marts_dir / 'unified_individual.parquet')}"
        ).fetchone()[0]
        assert profiles == len(_people(ws)), engine


def _members(ws) -> set[tuple[str, frozenset[str]]]:
    people = _people(ws)
    rows = duckdb.execute(
        "select segment_name, unified_individual_id "
        f"from {_scan(ws.marts_dir / 'segment_membership.parquet')} "
        "where unified_individual_id is not null"
    ).fetchall()
    return {(segment, people[uid]) for segment, uid in rows}


def test_same_segment_members(runs):
    duck, spark = (_members(runs[e][0]) for e in ENGINES)
    assert duck == spark
    assert len({segment for segment, _ in duck}) >= 3  # the demo's segments, not empty


def _export(ws, outcome) -> list[tuple]:
    people = _people(ws)
    export = ws.exports_dir / "email_high_value" / outcome.run_id / "email_high_value.csv"
    with export.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and "unified_individual_id" in rows[0]
    return sorted((sorted(people[r.pop("unified_individual_id")]), sorted(r.items())) for r in rows)


def test_same_export_rows(runs):
    duck, spark = (_export(*runs[e]) for e in ENGINES)
    assert duck == spark
