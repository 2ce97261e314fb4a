"""Increments of the dbt layers (cdp/harmonise/increments.py): the harmonised tables stage
again only the records a new load touched, the per-person marts compute again only the
people a run changed, and both equal a full build's answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest

from cdp.harmonise import increments
from cdp.harmonise.increments import HARMONISE, MARTS
from cdp.io import lake, parts
from cdp.workspace import resolve_workspace
from dagster_project.run import run_pipeline
from tests.data_tests import failed_whole, failure_on_increment, with_row
from tests.ingest.conftest import CSV_SOURCE, HEADER

pytestmark = [pytest.mark.slow, pytest.mark.takes(200)]


def _marts_kept(ws) -> dict[str, object]:
    """The marts an increment reads back: the bytes of those it writes as one file, and
    the rows of those it keeps in parts, sorted (a folder of parts has no one row order)."""
    return {
        name: sorted(_rows(path, "select * from {}"), key=lambda row: tuple(map(str, row)))
        if name in MARTS.parted
        else path.read_bytes()
        for name in MARTS.kept
        for path in [ws.marts_dir / f"{name}.parquet"]
    }


def _rows(path, sql: str) -> list[tuple]:
    """The query's rows, `{}` reading the table at `path` (a file or a folder of parts)."""
    return duckdb.execute(sql.replace("{}", lake.scan(path))).fetchall()


def _staged(ws, model: str) -> int:
    """Rows of a staging view in dbt's database: what the last build staged."""
    from cdp.harmonise.normalise import register_functions

    con = duckdb.connect(str(ws.dbt_database), read_only=True)
    try:
        register_functions(con)
        return con.sql(f"select count(*) from {model}").fetchall()[0][0]
    finally:
        con.close()


def _harmonised(ws) -> dict[str, list[tuple]]:
    """Every kept harmonised table's rows (the deduplicated tables and identity's
    input), sorted: row order is not part of the answer."""
    return {
        name: sorted(
            _rows(ws.harmonised_dir / f"{name}.parquet", "select * from {}"),
            key=lambda row: tuple(str(v) for v in row),
        )
        for name in HARMONISE.kept
    }


def _run(ws) -> None:
    outcome = run_pipeline(ws)
    assert outcome.success, (outcome.failed_steps, outcome.error)


def _assert_identity_hashes_as_dbt_made_them(ws) -> None:
    """Each record's hash, made in dbt as its row is (macro person_record_hash, only for
    the rows a build computes), is the hash identity's own definition gives the record
    (HASHED; cdp.identity.incremental.record_hashes): lists and all."""
    from cdp.identity.incremental import record_hashes, split_hashes
    from cdp.identity.prepare import build_records, connect_inputs

    records, made = split_hashes(build_records(connect_inputs(ws)))
    assert records.num_rows and "row_hash" not in records.column_names
    assert made.equals(record_hashes(records))
    assert pc.max(pc.list_value_length(records["identifiers"])).as_py() > 0


def _workspace_keying_on_two_holders(tmp_path):
    """A new workspace (`cdp init`) where an email or phone held by more than two records
    says nothing about who holds it (identity.max_identifier_records: 2)."""
    from typer.testing import CliRunner

    from cdp.cli.main import app

    root = tmp_path / "ws"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    ws = resolve_workspace(root)
    settings = ws.settings_file.read_text()
    ws.settings_file.write_text(
        settings.replace("identity: {}", "identity: {max_identifier_records: 2}")
    )
    return ws


def test_an_increment_recomputes_only_what_changed_and_equals_a_full_build(tmp_path):
    ws = _workspace_keying_on_two_holders(tmp_path)
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    (ws.landing_dir / "people").mkdir(parents=True)
    # a snapshot source: each file is the whole extract, so a record it drops must go;
    # its member number a party identifier
    (ws.sources_dir / "members.yml").write_text(
        CSV_SOURCE.replace("people", "members")
        + "  party_identification:\n    - {type: member_no, number: id}\n"
        + "mode: snapshot\n"
    )
    (ws.landing_dir / "members").mkdir(parents=True)
    (ws.landing_dir / "members" / "1.csv").write_text(
        HEADER
        + "m1,Eve,Fox,eve@m.com,33,1991-03-03,2024-01-01 10:00:00\n"
        + "m2,Gus,Hu,gus@m.com,44,1980-04-04,2024-01-01 10:00:00\n"
    )
    (ws.landing_dir / "people" / "1.csv").write_text(
        HEADER
        + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "2,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
        + "3,Cy,Wu,cy@x.com,50,1975-05-05,2024-01-01 10:00:00\n"
        + "5,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"  # Ann again
    )
    _run(ws)
    changed = ws.marts_dir / "int_unified_individuals_changed.parquet"
    assert _rows(changed, "select reason, count(*) from {} group by 1") == [("full", 5)]
    assert _staged(ws, "stg_people__individuals") == 4
    prepared = ws.harmonised_dir / "int_person_records_prepared.parquet"
    email_keys = "select source_record_id, email_key from {} order by 1"
    assert _rows(prepared, email_keys)[0] == ("1", "ann@x.com")

    # Bo gets a new email (the same person: his cluster stays as it was) and Di arrives,
    # with Ann's email: a third holder, so neither of Ann's records keys on it any more.
    (ws.landing_dir / "people" / "2.csv").write_text(
        HEADER
        + "2,Bo,Li,bo.li@y.com,30,1990-01-01,2024-03-01 10:00:00\n"
        + "4,Di,Ng,ann@x.com,22,2002-02-02,2024-03-01 10:00:00\n"
    )
    (ws.landing_dir / "members" / "2.csv").write_text(
        HEADER + "m2,Gus,Hu,gus@m.com,44,1980-04-04,2024-03-01 10:00:00\n"
    )
    parsed = ws.dbt_target_dir / "partial_parse.msgpack"
    manifest, results = (ws.dbt_target_dir / f for f in ("manifest.json", "run_results.json"))
    before, manifest_before = parsed.stat().st_mtime_ns, manifest.stat().st_mtime_ns
    results_before = results.stat().st_mtime_ns
    _run(ws)
    # Neither build parsed the project again: the run id, which changes every run, is
    # read when a model runs (dbt_models/macros/run.sql), not when dbt parses it.
    assert parsed.stat().st_mtime_ns == before
    # nor wrote the manifest prepare had written (cdp/harmonise/dbt_warm.py); the run's
    # results, which a failure is read from, are written
    assert manifest.stat().st_mtime_ns == manifest_before
    assert results.stat().st_mtime_ns > results_before
    # Harmonise staged Bo's two versions and Di, not Ann or Cy; the snapshot whole.
    assert _staged(ws, "stg_people__individuals") == 3
    assert _staged(ws, "stg_members__individuals") == 1
    harmonised = _harmonised(ws)
    _assert_identity_hashes_as_dbt_made_them(ws)
    assert _rows(prepared, email_keys) == [
        ("1", None),
        ("2", "bo.li@y.com"),
        ("3", "cy@x.com"),
        ("4", None),
        ("5", None),
        ("m2", "gus@m.com"),
    ]
    names = _rows(
        ws.harmonised_dir / "int_individuals_deduplicated.parquet",
        "select first_name from {} order by 1",
    )
    # Eve left the extract
    assert names == [("Ann",), ("Ann",), ("Bo",), ("Cy",), ("Di",), ("Gus",)]
    people = dict(
        _rows(
            ws.marts_dir / "unified_individual.parquet",
            "select first_name, unified_individual_id from {}",
        )
    )
    reasons = dict(_rows(changed, "select unified_individual_id, reason from {}"))
    assert reasons == {people["Bo"]: "records", people["Di"]: "identity", people["Gus"]: "records"}
    emails = _rows(
        ws.marts_dir / "unified_contact_point.parquet",
        f"select contact_value from {{}} where unified_individual_id = '{people['Bo']}' "
        "and is_best",
    )
    assert emails == [("bo.li@y.com",)]
    increment = _marts_kept(ws)

    # The same lake built whole gives the same rows, and the marts it reads back the same.
    increments.forget(ws)
    _run(ws)
    assert _staged(ws, "stg_people__individuals") == 6
    assert _harmonised(ws) == harmonised
    assert _rows(changed, "select distinct reason from {}") == [("full",)]
    assert _marts_kept(ws) == increment
    # Every column of every file dbt wrote nullable, whatever a plan proved about it: a
    # file's bytes depend on its rows only (macros/engine/duckdb_external.sql).
    written = [*ws.harmonised_dir.glob("*.parquet"), *ws.marts_dir.glob("*.parquet")]
    required = duckdb.execute(
        "select file_name, name from parquet_schema(?) "
        "where repetition_type = 'REQUIRED' and name != 'duckdb_schema' "
        "and name != 'key'",  # a map's keys, which Parquet requires
        [[str(p) for p in sorted(written)]],
    ).fetchall()
    assert required == []


PARTED = ("int_individuals_deduplicated", "int_person_records_prepared")


@pytest.fixture(scope="module")
def cy_added(tmp_path_factory):
    """A workspace keying on two holders whose `people` source ran with Ann and Bo, then
    again with Cy in a second file: two pipeline runs, shared by the two tests at the end
    of this file. They run in file order: the first puts back every file it changes, byte
    for byte and in the same inode; the second goes on from there.

    Returns (ws, landing folder, what the second test checks of the first two runs: each
    parted table's bytes and inode after the first run, and the SQL the second run ran
    for identity's input)."""
    root = tmp_path_factory.mktemp("cy_added")
    ws = _workspace_keying_on_two_holders(root)
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    landing = ws.landing_dir / "people"
    landing.mkdir(parents=True)
    (landing / "1.csv").write_text(
        HEADER
        + "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "2,Bo,Li,bo@x.com,30,1990-01-01,2024-01-01 10:00:00\n"
    )
    _run(ws)
    tables = [ws.harmonised_dir / f"{name}.parquet" for name in PARTED]
    # a file written again through a temporary one is a new inode, even with the same bytes
    first = {table: (table.read_bytes(), table.stat().st_ino) for table in tables}
    (landing / "2.csv").write_text(HEADER + "3,Cy,Wu,cy@x.com,50,1975-05-05,2024-02-01 10:00:00\n")
    _run(ws)
    ran = next(ws.dbt_target_dir.glob("run/**/int_person_records_prepared.sql")).read_text()
    return ws, landing, {"first": first, "prepared_sql": ran}


@pytest.mark.parametrize("layer", [HARMONISE, MARTS], ids=lambda layer: layer.name)
def test_a_layer_is_built_whole_unless_its_last_build_can_be_trusted(tmp_path, layer):
    """No record, another fingerprint, a retired load, a half-written file, a full
    refresh, an erasure or Spark: a full build. Otherwise the loads the last build did
    not see, and the snapshot sources among them (taken whole)."""
    from cdp.run_plan import fingerprint, invalidate
    from cdp.workspace import Workspace

    ws = Workspace(tmp_path)
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    (ws.sources_dir / "members.yml").write_text(
        CSV_SOURCE.replace("people", "members") + "mode: snapshot\n"
    )
    for load in ("000001", "000002"):
        (ws.raw_dir / "people" / f"load_id={load}").mkdir(parents=True)
    folder = getattr(ws, layer.folder)
    for name in layer.kept:
        duckdb.execute(f"copy (select 1 as x) to '{folder / name}.parquet'")
    for attr, name in layer.seen:  # the inputs the build keeps as it read them
        getattr(ws, attr).mkdir(parents=True, exist_ok=True)
        duckdb.execute(f"copy (select 1 as x) to '{getattr(ws, attr) / name}.parquet'")

    def decide(**kw):
        return increments.increment(ws, layer, engine="duckdb", full_refresh=False, **kw)

    assert decide()[0] is None  # no record of a build
    increments.record(ws, layer)
    seen = json.loads((ws.state_dir / layer.state).read_text())
    assert seen["loads"] == {"people": ["000001", "000002"]}
    assert seen["fingerprint"] == fingerprint(ws, layer.config_files)
    assert decide() == ({"new_loads": {}, "whole_sources": []}, "increment")
    (ws.raw_dir / "people" / "load_id=000003").mkdir()
    (ws.raw_dir / "members" / "load_id=000004").mkdir(parents=True)
    assert decide()[0] == {
        "new_loads": {"members": ["000004"], "people": ["000003"]},
        "whole_sources": ["members"],
    }
    assert increments.increment(ws, layer, engine="spark", full_refresh=False)[0] is None
    assert increments.increment(ws, layer, engine="duckdb", full_refresh=True)[0] is None

    half = folder / f"{layer.kept[-1]}.parquet"
    whole = half.read_bytes()
    half.write_bytes(whole[: len(whole) // 2])
    assert "incomplete" in decide()[1]
    half.write_bytes(whole)

    for _, name in layer.seen:  # an input as the last build read it, gone
        kept = layer.seen_dir(ws) / f"{name}.parquet"
        kept.unlink()
        assert decide() == (None, f"{name} as the last marts build read it was not kept")
        increments.record(ws, layer)
        assert kept.is_file() and decide()[1] == "increment"

    if layer.parted:  # a table kept in parts is trusted when every part is whole
        table = folder / f"{layer.parted[0]}.parquet"
        assert parts.split(table)
        assert decide()[1] == "increment"
        part = table / "part-00000.parquet"
        part.write_bytes(part.read_bytes()[:10])
        assert "incomplete" in decide()[1]
        parts.remove(table)
        duckdb.execute(f"copy (select 1 as x) to '{table}'")

    (ws.raw_dir / "people" / "load_id=000001").rmdir()  # retention retired a load
    assert decide() == (None, "1 load(s) of people left the lake since the last build")
    (ws.raw_dir / "people" / "load_id=000001").mkdir()

    assert decide()[0] is not None
    invalidate(ws, "an erasure")  # what `cdp forget` calls: the lake was rewritten
    assert decide() == (None, f"no earlier {layer.name} build to start from")

    increments.record(ws, layer)
    # the first run writes the identity model after harmonising: only the marts read it
    (ws.root / "identity_model.json").write_text("{}")
    assert (decide()[0] is None) == (layer is MARTS)
    increments.record(ws, layer)
    (ws.root / "cdp.yml").write_text("default_region: DE\n")
    assert "configuration or code changed" in decide()[1]


def test_identity_inputs_are_the_same_tables_in_sql_and_in_python():
    """int_person_records_prepared reads five tables, named in its increment macro and,
    for the loads a partial build holds back, in Python: both lists must agree."""
    import re

    from cdp.harmonise.dbt_codegen import deduplicated_model_name
    from cdp.run_plan import PACKAGE_ROOT

    macro = (PACKAGE_ROOT / "dbt_models" / "macros" / "increment.sql").read_text()
    listed = re.search(r"set objects = \[(.*?)\]", macro, re.S)
    in_sql = set(re.findall(r"'(\w+)'", listed.group(1)))
    in_python = {
        deduplicated_model_name(o).removeprefix("int_").removesuffix("_deduplicated")
        for o in increments._PERSON_RECORD_OBJECTS
    }
    assert in_sql == in_python


def test_a_moved_workspace_keeps_its_fingerprint(tmp_path):
    """The fingerprint hashes what the files say and where they sit in the workspace, not
    the folder it lives in: a workspace moved (or the same code in a second clone) is no
    reason to rebuild; an edited file is."""
    import shutil

    from cdp.run_plan import fingerprint
    from cdp.workspace import Workspace

    ws = Workspace(tmp_path / "here")
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)
    (ws.root / "cdp.yml").write_text("default_region: GB\n")
    moved = Workspace(Path(shutil.copytree(ws.root, tmp_path / "elsewhere" / "there")))
    assert fingerprint(moved) == fingerprint(ws)
    (moved.sources_dir / "people.yml").write_text(CSV_SOURCE + "# edited\n")
    assert fingerprint(moved) != fingerprint(ws)
    (moved.sources_dir / "people.yml").rename(moved.sources_dir / "persons.yml")
    assert fingerprint(moved) != fingerprint(ws)


def test_a_build_of_some_of_a_layers_kept_models(tmp_path):
    """One asset materialised from the UI, or `cdp run --source x`. Marts: what it
    builds is built whole, and the record goes if any per-person mart is rebuilt.
    Harmonise: an increment still, whose record holds back the new loads of a source
    with a reader left out (that reader has not taken them in)."""
    from cdp.workspace import Workspace

    ws = Workspace(tmp_path)
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(CSV_SOURCE)  # individuals and emails
    for layer in (HARMONISE, MARTS):
        kept = [(layer.folder, name) for name in layer.kept]
        for attr, name in [*kept, *layer.seen]:
            path = getattr(ws, attr) / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            duckdb.execute(f"copy (select 1 as x) to '{path}'")
        increments.record(ws, layer)

    def plan(layer, selected):
        return increments.plan_build(ws, layer, selected, engine="duckdb", full_refresh=False)

    assert plan(MARTS, {"customer_360"}) == increments.Plan(
        None, "the marts layer's kept models are not part of this build", "none"
    )
    some = plan(MARTS, {"unified_individual", "customer_360"})
    assert (some.increment, some.scope) == (None, "some")
    everything = plan(MARTS, set(MARTS.models) | {"customer_360"})
    assert everything == increments.Plan({"new_loads": {}, "whole_sources": []}, "increment", "all")

    (ws.raw_dir / "people" / "load_id=000001").mkdir(parents=True)
    increments.forget(ws, HARMONISE)
    first = plan(HARMONISE, {"int_individuals_deduplicated"})  # built whole
    assert first == increments.Plan(
        None, "no earlier harmonise build to start from", "all", {"people": ["000001"]}
    )
    increments.record(ws, HARMONISE, first.hold_back)
    new = {"new_loads": {"people": ["000001"]}, "whole_sources": []}
    tables = {"int_individuals_deduplicated", "int_contact_point_emails_deduplicated"}
    both = plan(HARMONISE, tables | {increments.PERSON_RECORDS})
    assert both == increments.Plan(new, "increment", "all")
    # identity's input reads people's rows too: left out, it has not taken them in
    no_records = plan(HARMONISE, tables)
    assert no_records == increments.Plan(new, "increment", "all", {"people": ["000001"]})
    one = plan(HARMONISE, {"int_individuals_deduplicated"})
    assert one == increments.Plan(new, "increment", "all", {"people": ["000001"]})
    increments.record(ws, HARMONISE, one.hold_back)
    assert plan(HARMONISE, set(HARMONISE.models)).increment == new  # staged again next time
    increments.record(ws, HARMONISE, both.hold_back)
    assert plan(HARMONISE, set(HARMONISE.models)).increment["new_loads"] == {}


def test_an_increment_counts_every_holder_of_an_affected_records_emails(tmp_path):
    """On an increment, identity's input counts how many records hold each email of the
    records it computes again: every holder, not only those computed again. Here a1 is
    computed again (two new records take its first email) and its second email is held
    by two records that are not: the count is 3, over the limit of 2, so a1 keys on no
    email, as a full build finds."""
    ws = _workspace_keying_on_two_holders(tmp_path)
    (ws.sources_dir / "people.yml").write_text(
        CSV_SOURCE.replace(
            "contact_point_email: {email_address: email}",
            "contact_point_email: [{email_address: email}, {email_address: email2}]",
        )
    )
    header = "id,first,last,email,email2,age,dob,updated\n"
    (ws.landing_dir / "people").mkdir(parents=True)
    (ws.landing_dir / "people" / "1.csv").write_text(
        header
        + "a1,Ann,Lee,ann.lee@mail.com,lee.family@mail.com,41,1985-02-03,2024-01-01 10:00:00\n"
        + "p6,Bo,Li,lee.family@mail.com,,30,1990-01-01,2024-01-01 10:00:00\n"
        + "p7,Cy,Wu,lee.family@mail.com,,50,1975-05-05,2024-01-01 10:00:00\n"
    )
    _run(ws)
    prepared = ws.harmonised_dir / "int_person_records_prepared.parquet"
    a1_key = "select email_key from {} where source_record_id = 'a1'"
    assert _rows(prepared, a1_key) == [("ann.lee@mail.com",)]

    (ws.landing_dir / "people" / "2.csv").write_text(
        header
        + "p8,Di,Ng,ann.lee@mail.com,,22,2002-02-02,2024-03-01 10:00:00\n"
        + "p9,Ed,Ko,ann.lee@mail.com,,33,1991-03-03,2024-03-01 10:00:00\n"
    )
    _run(ws)
    assert _staged(ws, "stg_people__individuals") == 2  # an increment: p8 and p9 only
    assert _rows(prepared, a1_key) == [(None,)]
    increment = _harmonised(ws)

    increments.forget(ws)
    _run(ws)
    assert _staged(ws, "stg_people__individuals") == 5
    assert _harmonised(ws) == increment


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
    assert "accepted_values" in whole and "gender" in whole

    # What the increment wrote is tested: a bad value, and a key an earlier part holds too.
    earlier.write_bytes(pristine[earlier])
    with_row(newest, "select * replace ('Q' as gender) from '{f}' limit 1")
    assert "accepted_values" in failure_on_increment(
        ws, monkeypatch, HARMONISE, "int_individuals_deduplicated"
    )
    newest.write_bytes(pristine[newest])
    with_row(
        newest, "select * from read_parquet('" + str(earlier) + "') where source_record_id = '1'"
    )
    found = failure_on_increment(ws, monkeypatch, HARMONISE, "int_individuals_deduplicated")
    assert "unique_combination" in found
    newest.write_bytes(pristine[newest])

    # unified_contact_point: only the changed people's rows (Cy's) are read.
    cy = _rows(
        ws.marts_dir / "unified_individual.parquet",
        "select unified_individual_id from {} where first_name = 'Cy'",
    )[0][0]
    changed = ws.marts_dir / "int_unified_individuals_changed.parquet"
    assert _rows(changed, "select unified_individual_id from {}") == [(cy,)]
    with_row(points, f"select * from '{{f}}' where unified_individual_id <> '{cy}' limit 1")
    assert failure_on_increment(ws, monkeypatch, MARTS, "unified_contact_point") is None
    assert "unique_combination" in failed_whole(ws, "unified_contact_point")
    points.write_bytes(pristine[points])
    with_row(points, f"select * from '{{f}}' where unified_individual_id = '{cy}' limit 1")
    assert "unique_combination" in failure_on_increment(
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
        assert _rows(table / "part-00001.parquet", ids) == [("3",)]
    second = {table: (table / "part-00001.parquet").stat().st_ino for table in tables}
    # identity's input took the records staged again from the deduplicated tables, whose
    # list of them (record ids) is gone with the build
    assert "/.cdp/touched/int_individuals_deduplicated.parquet" in seen["prepared_sql"]
    assert not (ws.state_dir / "touched").exists()

    (landing / "3.csv").write_text(
        HEADER + "1,Ann,Lee,ann@new.com,41,1985-02-03,2024-03-01 10:00:00\n"
    )
    _run(ws)
    for table in tables:
        assert len(parts.part_files(table)) == 3
        assert (table / "part-00001.parquet").stat().st_ino == second[table], table.name
        assert _rows(table / "part-00000.parquet", ids) == [("2",)]
        assert _rows(table / "part-00002.parquet", ids) == [("1",)]
    prepared = tables[1]
    assert _rows(prepared, "select source_record_id, email_key from {} order by 1") == [
        ("1", "ann@new.com"),
        ("2", "bo@x.com"),
        ("3", "cy@x.com"),
    ]

    # An erasure reaches every part (and the next build is full: one file again).
    from cdp.privacy.forget import forget

    forget(ws, "cy@x.com")
    for table in tables:
        assert _rows(table, ids) == [("1",), ("2",)]
        assert _rows(table / "part-00001.parquet", ids) == []
    _run(ws)
    assert all(table.is_file() for table in tables)
