"""Two runs of one small workspace, the second with a new load, shared by two tests: an
increment's data tests read the rows it wrote, and a harmonise increment writes its rows
as a new part of each deduplicated table (cdp/io/parts.py)."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from cdp.harmonise import increments
from cdp.harmonise.increments import HARMONISE, MARTS
from cdp.io import parts
from tests.data_tests import failed_whole, failure_on_increment, with_row
from tests.increment_workspaces import rows, run, workspace_keying_on_two_holders
from tests.ingest.conftest import CSV_SOURCE, HEADER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(110),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


PARTED = ("int_individuals_deduplicated", "int_person_records_prepared")


@pytest.fixture(scope="module")
def cy_added(tmp_path_factory):
    """A workspace keying on two holders whose `people` source ran with Ann and Bo, then
    again with Cy in a second file: two pipeline runs, shared by the two tests of this
    file. They run in file order: the first puts back every file it changes, byte
    for byte and in the same inode; the second goes on from there.

    Returns (ws, landing folder, what the second test checks of the first two runs: each
    parted table's bytes and inode after the first run, and the SQL the second run ran
    for identity's input)."""
    root = tmp_path_factory.mktemp("cy_added")
    ws = workspace_keying_on_two_holders(root)
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    landing = ws.landing_dir / "people"
    landing.mkdir(parents=True)
    (landing / "1.csv").write_text(
        HEADER
        + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "2,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
    )
    run(ws)
    tables = [ws.harmonised_dir / f"{name}.parquet" for name in PARTED]
    # a file written again through a temporary one is a new inode, even with the same bytes
    first = {table: (table.read_bytes(), table.stat().st_ino) for table in tables}
    (landing / "2.csv").write_text(HEADER + "3,Cy,Wu,cy@x.com,50,1975-05-05,2024-02-01 10:00:00\n")
    run(ws)
    ran = next(ws.dbt_target_dir.glob("run/**/int_person_records_prepared.sql")).read_text()
    return ws, landing, {"first": first, "prepared_sql": ran}


def test_an_increment_tests_the_rows_it_wrote(cy_added, monkeypatch):
    """On an increment, a test that judges each row alone reads the rows the build wrote
    (the newest part; the changed people's rows), and a uniqueness test reads every row
    sharing a key with one of those: what the build copied passed when it was written."""
    ws, _, _ = cy_added  # Cy's load was the second run
    individuals = ws.harmonised_dir / "int_individuals_deduplicated.parquet"
    earlier, newest = (individuals / "part-00000.parquet", individuals / "part-00001.parquet")
    points = ws.marts_dir / "unified_contact_point.parquet"
    emails = ws.harmonised_dir / "int_contact_point_emails_deduplicated.parquet"
    emails = (emails / "part-00000.parquet", emails / "part-00001.parquet")
    pristine = {path: path.read_bytes() for path in (earlier, newest, points, *emails)}
    try:
        _bad_rows_in_an_increment(ws, monkeypatch, earlier, newest, points, pristine)
        _rows_naming_a_person_record(ws, monkeypatch, emails, pristine)
    finally:  # the files as the two runs left them, for the next test
        for path, content in pristine.items():
            path.write_bytes(content)
        shutil.rmtree(increments.touched_dir(ws), ignore_errors=True)


# the relationship tests, selected themselves: selecting their model leaves them out
# (--indirect-selection cautious), as they also read int_individuals_deduplicated
BELONGS = "test_name:belongs_to_individual"


def _rows_naming_a_person_record(ws, monkeypatch, emails, pristine):
    """belongs_to_individual on an increment: the rows written, and the copied rows whose
    person record the build staged again (.cdp/touched, as the build leaves it while it
    runs), the only ones that can have gone."""
    earlier, newest = emails
    touched = increments.touched_dir(ws)
    touched.mkdir(parents=True, exist_ok=True)

    def staged_again(*ids: str) -> None:
        listed = " union all ".join(
            f"select 'people' as source_name, '{i}' as source_record_id" for i in ids
        )
        duckdb.execute(f"copy ({listed}) to '{touched}/int_individuals_deduplicated.parquet'")

    orphan = (
        "select * replace ('{id}' as source_record_id, 'people:{id}:x' as contact_point_id) "
        "from '{{f}}' limit 1"
    )
    staged_again("3")  # Cy, as the second run staged him
    with_row(earlier, orphan.format(id="99"))  # a copy naming no person record
    assert failure_on_increment(ws, monkeypatch, HARMONISE, BELONGS) is None
    assert "belongs_to_individual_int_contact_point_emails" in failed_whole(ws, BELONGS)
    # ...read when its person record was staged again (and is gone)
    staged_again("3", "99")
    found = failure_on_increment(ws, monkeypatch, HARMONISE, BELONGS)
    assert "belongs_to_individual_int_contact_point_emails" in found
    earlier.write_bytes(pristine[earlier])
    staged_again("3")
    with_row(newest, orphan.format(id="98"))  # a row written
    found = failure_on_increment(ws, monkeypatch, HARMONISE, BELONGS)
    assert "belongs_to_individual_int_contact_point_emails" in found
    newest.write_bytes(pristine[newest])


def _bad_rows_in_an_increment(ws, monkeypatch, earlier, newest, points, pristine):
    """The checks of the test above, each bad row planted in a file and taken out again."""
    # A bad row among the copies (an earlier part) is not read again on an increment; a
    # test of the whole table finds it.
    with_row(
        earlier, "select * replace ('9' as source_record_id, 'Q' as gender) from '{f}' limit 1"
    )
    assert failure_on_increment(ws, monkeypatch, HARMONISE, "int_individuals_deduplicated") is None
    whole = failed_whole(ws, "int_individuals_deduplicated")
    assert "accepted_values(gender): 1 row(s)" in whole

    # What the increment wrote is tested: a bad value, and a key an earlier part holds too.
    earlier.write_bytes(pristine[earlier])
    with_row(newest, "select * replace ('Q' as gender) from '{f}' limit 1")
    assert "accepted_values(gender)" in failure_on_increment(
        ws, monkeypatch, HARMONISE, "int_individuals_deduplicated"
    )
    newest.write_bytes(pristine[newest])
    with_row(
        newest, "select * from read_parquet('" + str(earlier) + "') where source_record_id = '1'"
    )
    found = failure_on_increment(ws, monkeypatch, HARMONISE, "int_individuals_deduplicated")
    assert "unique(source_name, source_record_id)" in found
    newest.write_bytes(pristine[newest])

    # unified_contact_point: only the changed people's rows (Cy's) are read.
    cy = rows(
        ws.marts_dir / "unified_individual.parquet",
        "select unified_individual_id from {} where first_name = 'Cy'",
    )[0][0]
    changed = ws.marts_dir / "int_unified_individuals_changed.parquet"
    assert rows(changed, "select unified_individual_id from {}") == [(cy,)]
    with_row(points, f"select * from '{{f}}' where unified_individual_id <> '{cy}' limit 1")
    assert failure_on_increment(ws, monkeypatch, MARTS, "unified_contact_point") is None
    assert "unique(unified_individual_id, channel, match_key)" in failed_whole(
        ws, "unified_contact_point"
    )
    points.write_bytes(pristine[points])
    with_row(points, f"select * from '{{f}}' where unified_individual_id = '{cy}' limit 1")
    assert "unique(unified_individual_id, channel, match_key)" in failure_on_increment(
        ws, monkeypatch, MARTS, "unified_contact_point"
    )


def test_new_records_add_a_part_and_a_change_rewrites_only_the_part_holding_it(cy_added):
    """A harmonise increment writes the rows it computed again as a new part of each
    deduplicated table and of identity's input (cdp/io/parts.py): a load of new records
    leaves the earlier parts' bytes alone; a changed record's older row leaves the one
    part that held it."""
    ws, landing, seen = cy_added  # Cy's load was the second run
    tables = [ws.harmonised_dir / f"{name}.parquet" for name in PARTED]
    ids = "select source_record_id from {} order by 1"
    for table in tables:
        assert [p.name for p in parts.part_files(table)] == [
            "part-00000.parquet",
            "part-00001.parquet",
        ]
        first = table / "part-00000.parquet"
        assert (first.read_bytes(), first.stat().st_ino) == seen["first"][table], table.name
        assert rows(table / "part-00001.parquet", ids) == [("3",)]
    second = {table: (table / "part-00001.parquet").stat().st_ino for table in tables}
    # identity's input took the records staged again from the deduplicated tables, whose
    # list of them (record ids) is gone with the build
    assert "/.cdp/touched/int_individuals_deduplicated.parquet" in seen["prepared_sql"]
    assert not (ws.state_dir / "touched").exists()

    (landing / "3.csv").write_text(
        HEADER + "1,Ann,Lee,ann@new.com,41,1985-02-03,2024-03-01 10:00:00\n"
    )
    run(ws)
    for table in tables:
        assert len(parts.part_files(table)) == 3
        assert (table / "part-00001.parquet").stat().st_ino == second[table], table.name
        assert rows(table / "part-00000.parquet", ids) == [("2",)]
        assert rows(table / "part-00002.parquet", ids) == [("1",)]
    prepared = tables[1]
    assert rows(prepared, "select source_record_id, email_key from {} order by 1") == [
        ("1", "ann@new.com"),
        ("2", "bo@x.com"),
        ("3", "cy@x.com"),
    ]

    # An erasure reaches every part (and the next build is full: one file again).
    from cdp.privacy.forget import forget

    forget(ws, "cy@x.com")
    for table in tables:
        assert rows(table, ids) == [("1",), ("2",)]
        assert rows(table / "part-00001.parquet", ids) == []
    run(ws)
    assert all(table.is_file() for table in tables)
