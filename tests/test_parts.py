"""Tables kept as folders of Parquet parts between harmonise increments (cdp/io/parts.py),
on real files: made from a full build's file, tidied after a build, read as one."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.io import lake, parts


def _table(path, ids: list[str]) -> None:
    pq.write_table(pa.table({"source_name": ["crm"] * len(ids), "source_record_id": ids}), path)


def _ids(path) -> list[str]:
    return sorted(
        r[0] for r in duckdb.execute(f"select source_record_id from {lake.scan(path)}").fetchall()
    )


def test_a_full_builds_file_becomes_the_first_part_and_back(tmp_path):
    path = tmp_path / "int_x_deduplicated.parquet"
    _table(path, ["1", "2"])
    before = path.read_bytes()
    assert parts.split(path) and parts.is_parted(path) and parts.whole(path)
    assert parts.part_files(path) == [path / "part-00000.parquet"]
    assert (path / "part-00000.parquet").read_bytes() == before  # moved, not rewritten
    assert parts.split(path)  # already parts
    assert parts.next_part(path).name == "part-00001.parquet"
    assert _ids(path) == ["1", "2"]
    parts.remove(path)  # a full build writes the file again
    assert not path.exists()


def test_an_empty_or_missing_table_is_not_split(tmp_path):
    missing = tmp_path / "missing.parquet"
    assert not parts.split(missing) and not missing.exists()
    # an empty model's file holds one all-null row, which no reader counts
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"source_name": pa.array([None], pa.string())}), empty)
    assert not parts.split(empty) and empty.is_file()


def test_a_folder_with_a_broken_part_is_not_trusted(tmp_path):
    path = tmp_path / "t.parquet"
    _table(path, ["1"])
    parts.split(path)
    _table(path / "part-00001.parquet", ["2"])
    assert parts.whole(path)
    part = path / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:20])
    assert not parts.whole(path)
    # Spark's folders have no marker: not this project's parts
    spark = tmp_path / "spark.parquet"
    spark.mkdir()
    _table(spark / "part-00000-abc.snappy.parquet", ["1"])
    assert not parts.is_parted(spark) and not parts.whole(spark)


def test_tidy_drops_empty_parts_and_merges_small_ones_past_the_limit(tmp_path):
    path = tmp_path / "o'brien" / "t.parquet"  # a quote in the workspace's path
    path.parent.mkdir()
    _table(path, [str(i) for i in range(100)])
    parts.split(path)
    for n in range(1, 5):
        _table(path / f"part-{n:05d}.parquet", [f"n{n}"])
    _table(path / "part-00005.parquet", [])
    (path / "tmp_part-00006.parquet").write_bytes(b"half written")  # a killed COPY
    parts.tidy(path, max_parts=8)
    names = [p.name for p in parts.part_files(path)]
    assert names == [f"part-{n:05d}.parquet" for n in range(5)]
    assert not (path / "tmp_part-00006.parquet").exists()

    parts.tidy(path, max_parts=3)
    # the largest part stays as it was; the four small ones are one part now
    assert [p.name for p in parts.part_files(path)] == ["part-00000.parquet", "part-00005.parquet"]
    assert pq.read_metadata(path / "part-00005.parquet").num_rows == 4
    merged = [
        v for p in parts.part_files(path) for v in pq.read_table(p)["source_record_id"].to_pylist()
    ]
    assert sorted(merged) == sorted([str(i) for i in range(100)] + ["n1", "n2", "n3", "n4"])


def test_tidy_keeps_one_part_of_an_empty_table(tmp_path):
    path = tmp_path / "t.parquet"
    _table(path, ["1"])
    parts.split(path)
    _table(path / "part-00000.parquet", [])  # its one record went (a snapshot)
    _table(path / "part-00001.parquet", [])
    parts.tidy(path)
    assert len(parts.part_files(path)) == 1 and _ids(path) == []
