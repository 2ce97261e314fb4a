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
from cdp.io import parts
from tests.increment_workspaces import rows, run, workspace_keying_on_two_holders
from tests.ingest.conftest import CSV_SOURCE, HEADER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(165),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


def _marts_kept(ws) -> dict[str, object]:
    """The marts an increment reads back: the bytes of those it writes as one file, and
    the rows of those it keeps in parts, sorted (a folder of parts has no one row order)."""
    return {
        name: sorted(rows(path, "select * from {}"), key=lambda row: tuple(map(str, row)))
        if name in MARTS.parted
        else path.read_bytes()
        for name in MARTS.kept
        for path in [ws.marts_dir / f"{name}.parquet"]
    }


def _staged(ws, model: str) -> int:
    """Rows of a staging view in dbt's database: what the last build staged."""
    from cdp.harmonise.dbt_env import connect_dbt_database

    con = connect_dbt_database(ws)
    try:
        return con.sql(f"select count(*) from {model}").fetchall()[0][0]
    finally:
        con.close()


def _harmonised(ws) -> dict[str, list[tuple]]:
    """Every kept harmonised table's rows (the deduplicated tables and identity's
    input), sorted: row order is not part of the answer."""
    return {
        name: sorted(
            rows(ws.harmonised_dir / f"{name}.parquet", "select * from {}"),
            key=lambda row: tuple(str(v) for v in row),
        )
        for name in HARMONISE.kept
    }


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


def test_an_increment_recomputes_only_what_changed_and_equals_a_full_build(tmp_path):
    ws = workspace_keying_on_two_holders(tmp_path)
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
    run(ws)
    changed = ws.marts_dir / "int_unified_individuals_changed.parquet"
    assert rows(changed, "select reason, count(*) from {} group by 1") == [("full", 5)]
    assert _staged(ws, "stg_people__individuals") == 4
    prepared = ws.harmonised_dir / "int_person_records_prepared.parquet"
    email_keys = "select source_record_id, email_key from {} order by 1"
    assert rows(prepared, email_keys)[0] == ("1", "ann@x.com")

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
    run(ws)
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
    assert rows(prepared, email_keys) == [
        ("1", None),
        ("2", "bo.li@y.com"),
        ("3", "cy@x.com"),
        ("4", None),
        ("5", None),
        ("m2", "gus@m.com"),
    ]
    names = rows(
        ws.harmonised_dir / "int_individuals_deduplicated.parquet",
        "select first_name from {} order by 1",
    )
    # Eve left the extract
    assert names == [("Ann",), ("Ann",), ("Bo",), ("Cy",), ("Di",), ("Gus",)]
    people = dict(
        rows(
            ws.marts_dir / "unified_individual.parquet",
            "select first_name, unified_individual_id from {}",
        )
    )
    reasons = dict(rows(changed, "select unified_individual_id, reason from {}"))
    assert reasons == {people["Bo"]: "records", people["Di"]: "identity", people["Gus"]: "records"}
    emails = rows(
        ws.marts_dir / "unified_contact_point.parquet",
        f"select contact_value from {{}} where unified_individual_id = '{people['Bo']}' "
        "and is_best",
    )
    assert emails == [("bo.li@y.com",)]
    increment = _marts_kept(ws)

    # The same lake built whole gives the same rows, and the marts it reads back the same.
    increments.forget(ws)
    run(ws)
    assert _staged(ws, "stg_people__individuals") == 6
    assert _harmonised(ws) == harmonised
    assert rows(changed, "select distinct reason from {}") == [("full",)]
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
    ws = workspace_keying_on_two_holders(tmp_path)
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
    run(ws)
    prepared = ws.harmonised_dir / "int_person_records_prepared.parquet"
    a1_key = "select email_key from {} where source_record_id = 'a1'"
    assert rows(prepared, a1_key) == [("ann.lee@mail.com",)]

    (ws.landing_dir / "people" / "2.csv").write_text(
        header
        + "p8,Di,Ng,ann.lee@mail.com,,22,2002-02-02,2024-03-01 10:00:00\n"
        + "p9,Ed,Ko,ann.lee@mail.com,,33,1991-03-03,2024-03-01 10:00:00\n"
    )
    run(ws)
    assert _staged(ws, "stg_people__individuals") == 2  # an increment: p8 and p9 only
    assert rows(prepared, a1_key) == [(None,)]
    increment = _harmonised(ws)

    increments.forget(ws)
    run(ws)
    assert _staged(ws, "stg_people__individuals") == 5
    assert _harmonised(ws) == increment
