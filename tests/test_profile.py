"""The profile store and `cdp profile`, on a small hand-made lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cdp.cli.main import app
from cdp.errors import CdpError
from cdp.io.atomic import write_parquet
from cdp.profile import find, load, lookup_profiles, open_store
from cdp.serving.profile_store import build_profile_store, store_path
from cdp.workspace import Workspace
from tests.conftest import make_profile_lake


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return make_profile_lake(tmp_path / "ws")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mary@x.com", ["U1"]),
        ("MARY@X.COM", ["U1"]),  # the case an agent types does not matter
        ("+1 313 318 5461", ["U1"]),
        ("(313) 318-5461", ["U1"]),  # national format, default region
        ("001 313 318 5461", ["U1"]),  # an international prefix
        ("011 1 313 318 5461", ["U1"]),  # the US international prefix
        ("00 44 20 7946 0018", ["U3"]),
        ("U3", ["U3"]),
        ("Mary Jones", ["U1", "U2"]),  # a name can be several people
        ("mary  JONES", ["U1", "U2"]),
        ("nobody@x.com", []),
        ("Zed Quinn", []),
    ],
)
def test_find_by_email_phone_id_or_name(ws, query, expected):
    con = open_store(ws)
    assert find(con, query) == expected


def test_a_name_narrowed_by_postcode(ws):
    con = open_store(ws)
    assert find(con, "Mary Jones", postcode="10 001") == ["U2"]


def test_the_document_holds_every_section(ws):
    (doc,) = lookup_profiles(ws, "mary@x.com")
    assert doc["customer"]["first_name"] == "Mary" and doc["customer"]["lifetime_value"] == 701.08
    assert {c["channel"] for c in doc["contact_points"]} == {"email", "phone"}
    assert doc["contact_points"][0]["sources"] == ["crm", "shop"]
    assert doc["consents"] == [
        {"purpose": "marketing", "channel": "email", "status": "withdrawn", "is_granted": False}
    ]
    assert doc["segments"] == ["high_value"]
    assert [r["source_record_id"] for r in doc["records"]] == ["c1", "s1"]
    json.dumps(doc)  # the JSON of `cdp profile --format json` and of the API


def test_the_cli_prints_the_same_document_as_json(ws):
    out = CliRunner().invoke(app, ["profile", "U1", "-w", str(ws.root), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == load(open_store(ws), "U1")
    missing = CliRunner().invoke(app, ["profile", "nobody@x.com", "-w", str(ws.root)])
    assert missing.exit_code == 1 and "no unified individual matches" in missing.output


def test_a_reader_keeps_its_snapshot_while_a_run_publishes_a_new_one(ws):
    con = open_store(ws)
    assert find(con, "ann@x.com") == ["U3"]
    path = store_path(ws.lake_dir)
    inode = path.stat().st_ino
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table({"unified_individual_id": ["U9"], "first_name": ["New"], "last_name": ["One"]}),
    )
    build_profile_store(ws)  # a run finishes and publishes
    assert path.stat().st_ino != inode  # a new file, renamed into place whole
    assert find(con, "ann@x.com") == ["U3"]  # the open reader still sees its snapshot
    assert load(con, "U3")["customer"]["first_name"] == "Ann"
    assert find(open_store(ws), "U9") == ["U9"]  # a new reader sees the new run


def test_the_profile_command_imports_no_pipeline_machinery(ws):
    probe = (
        "import sys; from cdp.cli.main import app; "
        "from cdp.profile import lookup_profiles; from pathlib import Path; "
        "from cdp.workspace import Workspace; "
        f"lookup_profiles(Workspace(Path({str(ws.root)!r})), 'mary@x.com'); "
        "heavy = [m for m in ('splink', 'dagster', 'dbt', 'pyarrow', 'pydantic', 'sqlglot') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert out.stdout.strip() == "[]"


def test_a_person_is_one_row_of_the_store_in_small_sorted_row_groups(ws):
    """The lookup reads one precomputed row; small sorted row groups keep its cost flat
    as the customer count grows (the table is scanned with zonemaps, not an index)."""
    import duckdb

    from cdp.serving.profile_store import ROW_GROUP_SIZE

    con = duckdb.connect(str(store_path(ws.lake_dir)), read_only=True)
    ids = [r[0] for r in con.execute("select unified_individual_id from profile").fetchall()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    keys = [r[0] for r in con.execute("select key from lookup").fetchall()]
    assert keys == sorted(keys)
    assert ROW_GROUP_SIZE <= 16384


@pytest.mark.parametrize("reverse", [False, True])
def test_the_customer_table_is_in_id_order_whatever_order_the_mart_has(ws, reverse):
    """The marts write customer_360 in id order, and the store takes its rows as they
    come; a customer_360 written in another order is sorted."""
    import pyarrow.parquet as pq

    path = ws.marts_dir / "customer_360.parquet"
    rows = pq.read_table(path)
    if reverse:
        write_parquet(path, rows.take(pa.array(range(rows.num_rows - 1, -1, -1))))
    assert rows["unified_individual_id"].to_pylist() == ["U1", "U2", "U3"]
    build_profile_store(ws, reuse=False)
    assert _store(ws, "select unified_individual_id from customer") == [("U1",), ("U2",), ("U3",)]
    assert find(open_store(ws), "U3") == ["U3"]


def test_a_store_from_an_older_version_asks_for_a_full_refresh(ws):
    import duckdb

    con = duckdb.connect(str(store_path(ws.lake_dir)))
    con.execute("drop table meta")
    con.execute("create table meta as select 'US' as default_region")
    con.close()
    with pytest.raises(
        CdpError, match=r"format 1, this one reads 3\): run `cdp run --full-refresh`"
    ):
        open_store(ws)


def _entry(ws, *args: str) -> subprocess.CompletedProcess:
    """The installed `cdp` command's entry point (cdp.cli.entry:main), in a subprocess."""
    return subprocess.run(
        [sys.executable, "-c", "from cdp.cli.entry import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_the_entry_point_answers_profile_without_typer_and_says_the_same(ws):
    fast = _entry(ws, "profile", "U1", "-w", str(ws.root), "--format", "json")
    assert fast.returncode == 0, fast.stderr
    typer_path = CliRunner().invoke(app, ["profile", "U1", "-w", str(ws.root), "-f", "json"])
    assert json.loads(fast.stdout) == json.loads(typer_path.output)
    # a name with a postcode, the text card
    card = _entry(ws, "profile", "--postcode", "10 001", "Mary Jones", "-w", str(ws.root))
    assert card.returncode == 0 and "1 profile(s)" in card.stdout, card.stderr
    # the same one-line errors and exit codes as the typer command
    missing = _entry(ws, "profile", "nobody@x.com", "-w", str(ws.root))
    assert missing.returncode == 1
    assert (
        missing.stderr.strip()
        == "error: no unified individual matches that email, phone, id or name"
    )
    bad = _entry(ws, "profile", "U1", "-w", str(ws.root), "-f", "xml")
    assert bad.returncode == 1 and "--format must be text or json, not 'xml'" in bad.stderr


def test_the_entry_point_leaves_help_and_unknown_options_to_typer(ws):
    from cdp.cli.entry import profile_args

    assert profile_args(["U1", "-w", "x", "--postcode", "P", "-f", "json"]) is not None
    assert profile_args(["--help"]) is None
    assert profile_args(["U1", "--colour"]) is None  # typer says what is wrong with it
    assert profile_args([]) is None  # the missing query too
    helped = _entry(ws, "profile", "--help")
    assert helped.returncode == 0 and "--postcode" in helped.stdout


def test_the_fast_path_loads_neither_typer_nor_pydantic(ws):
    """Nor rich, for JSON: each of these costs tens of milliseconds of imports."""
    probe = (
        "import sys; sys.argv = ['cdp', 'profile', 'U1', '-w', sys.argv[1], '-f', 'json']\n"
        "from cdp.cli.entry import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print([m for m in ('typer', 'pydantic', 'rich', 'splink', 'dagster') if m in sys.modules], code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(ws.root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert out.stdout.strip().splitlines()[-1] == "[] 0", out.stdout + out.stderr


def _documents(ws) -> dict[str, dict]:
    con = open_store(ws)
    try:
        return {uid: load(con, uid) for uid in ("U1", "U2", "U3")}
    finally:
        con.close()


def _store(ws, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(store_path(ws.lake_dir)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _grant(ws, uid: str) -> None:
    """A consent row more for `uid`: a section row of theirs changed."""
    import pyarrow.parquet as pq

    consent = ws.marts_dir / "individual_consent.parquet"
    rows = pq.read_table(consent).to_pylist()
    rows.append(rows[0] | {"unified_individual_id": uid, "status": "granted", "is_granted": True})
    write_parquet(consent, pa.Table.from_pylist(rows))


def test_a_new_store_builds_only_the_documents_whose_rows_changed(ws, monkeypatch):
    """A document is built again only when one of the person's section rows changed; the
    others are kept from the store it replaces (a copy of its file, the new documents
    appended), and read the same as a whole build. Past APPENDED_SHARE of documents out
    of id order, the table is written whole and sorted again."""
    import pyarrow.parquet as pq

    from cdp.serving import profile_store

    monkeypatch.setattr(profile_store, "APPENDED_SHARE", 0.5)  # one of three documents

    before = _documents(ws)
    assert build_profile_store(ws)["documents_built"] == 0  # nothing changed
    assert _documents(ws) == before

    # Ann gets a consent row; every lifetime value moves (the customer_360 row, not the
    # document: it is read beside it).
    _grant(ws, "U3")
    c360 = ws.marts_dir / "customer_360.parquet"
    people = pq.read_table(c360)
    values = [v + 1 for v in people["lifetime_value"].to_pylist()]
    write_parquet(c360, people.set_column(7, "lifetime_value", pa.array(values)))

    counts = build_profile_store(ws)
    assert (counts["documents_built"], counts["profile"]) == (1, 3)
    assert _store(ws, "select appended from meta") == [(1,)]  # updated in place
    after = _documents(ws)
    assert [c["status"] for c in after["U3"]["consents"]] == ["granted"]
    assert after["U1"]["customer"]["lifetime_value"] == 702.08
    assert build_profile_store(ws, reuse=False)["documents_built"] == 3
    assert _documents(ws) == after
    assert _store(ws, "select appended from meta") == [(0,)]

    # U1 moves to the end of the table; then U2 would make two of three out of order
    _grant(ws, "U1")
    assert build_profile_store(ws)["documents_built"] == 1
    order = "select unified_individual_id from profile"
    assert _store(ws, order) == [("U2",), ("U3",), ("U1",)]
    _grant(ws, "U2")
    assert build_profile_store(ws)["documents_built"] == 1
    assert _store(ws, order) == [("U1",), ("U2",), ("U3",)]
    assert _store(ws, "select appended from meta") == [(0,)]
    after = _documents(ws)
    build_profile_store(ws, reuse=False)
    assert _documents(ws) == after


def test_a_document_holds_the_latest_orders_and_a_new_one_builds_it_again(ws):
    """Of a person's orders, the document holds the RECENT latest, newest first. A new
    order builds that person's document again (and nobody else's): every order counts
    towards the hash, only the latest are staged; the store reads as a whole build."""
    from datetime import datetime, timedelta

    from cdp.serving.profile_store import RECENT

    orders = ws.marts_dir / "int_sales_orders_attributed.parquet"

    def write_orders(n: int) -> None:
        start = datetime(2026, 1, 1)
        write_parquet(
            orders,
            pa.table(
                {
                    "unified_individual_id": ["U1"] * n + ["U2"],
                    "source_record_id": [f"o{i:02d}" for i in range(n)] + ["p1"],
                    "order_ts": [start + timedelta(days=i) for i in range(n)] + [start],
                    "total_amount": [10.0 + i for i in range(n)] + [5.0],
                }
            ),
        )

    write_orders(RECENT + 2)
    build_profile_store(ws)  # (a section more: the layout changed, every document is built)
    newest = [o["source_record_id"] for o in _documents(ws)["U1"]["orders"]]
    assert newest == [f"o{i:02d}" for i in range(RECENT + 1, 1, -1)]
    write_orders(RECENT + 3)
    assert build_profile_store(ws)["documents_built"] == 1
    after = _documents(ws)
    assert after["U1"]["orders"][0]["source_record_id"] == f"o{RECENT + 2:02d}"
    assert len(after["U1"]["orders"]) == RECENT
    assert [o["source_record_id"] for o in after["U2"]["orders"]] == ["p1"]
    build_profile_store(ws, reuse=False)
    assert _documents(ws) == after


def test_the_lookup_is_written_again_only_for_people_whose_keys_changed(ws, monkeypatch):
    """Ann's email changes and Mary Jones (U2) is renamed: their lookup rows are deleted
    and written again at the table's end, everyone else's stay; a lifetime value moving
    for everyone changes no key. The keys are those of a whole build. Past
    APPENDED_SHARE of rows out of order, the table is written whole and sorted again."""
    import pyarrow.parquet as pq

    from cdp.serving import profile_store

    monkeypatch.setattr(profile_store, "APPENDED_SHARE", 0.9)  # 6 rows of 10 move
    rows = "select key, kind, unified_individual_id, postal_code from lookup"
    assert build_profile_store(ws)["lookup"] == len(_store(ws, rows))
    before = _store(ws, rows)

    points = ws.marts_dir / "unified_contact_point.parquet"
    table = pq.read_table(points)
    emails = [v.replace("ann@", "ann.b@") for v in table["contact_value"].to_pylist()]
    keys = [v.replace("ann@", "ann.b@") for v in table["match_key"].to_pylist()]
    table = table.set_column(
        table.schema.get_field_index("contact_value"), "contact_value", pa.array(emails)
    )
    write_parquet(
        points,
        table.set_column(table.schema.get_field_index("match_key"), "match_key", pa.array(keys)),
    )
    c360 = ws.marts_dir / "customer_360.parquet"
    people = pq.read_table(c360)
    values = [v + 1 for v in people["lifetime_value"].to_pylist()]
    people = people.set_column(7, "lifetime_value", pa.array(values))
    last = ["Jones", "Smith", people["last_name"][2].as_py()]
    write_parquet(
        c360,
        people.set_column(people.schema.get_field_index("last_name"), "last_name", pa.array(last)),
    )

    build_profile_store(ws)
    after = _store(ws, rows)
    kept = [r for r in before if r[2] == "U1"]  # in key order, where they were
    appended = after[len(kept) :]
    assert after[: len(kept)] == kept
    assert {r[2] for r in appended} == {"U2", "U3"}
    assert [r[0] for r in appended] == sorted(r[0] for r in appended)
    assert after != sorted(after)  # updated in place, not written whole
    assert _store(ws, "select lookup_appended from meta") == [(len(appended),)]
    con = open_store(ws)
    assert find(con, "ann.b@x.com") == ["U3"] and find(con, "ann@x.com") == []
    assert find(con, "Mary Smith") == ["U2"] and find(con, "Mary Jones") == ["U1"]
    con.close()
    build_profile_store(ws, reuse=False)
    assert sorted(_store(ws, rows)) == sorted(after)
    assert _store(ws, "select lookup_appended from meta") == [(0,)]

    monkeypatch.setattr(profile_store, "APPENDED_SHARE", 0.1)  # U2's two rows: past it
    last = ["Jones", "Jones", people["last_name"][2].as_py()]  # U2 is Mary Jones again
    write_parquet(
        c360,
        people.set_column(people.schema.get_field_index("last_name"), "last_name", pa.array(last)),
    )
    build_profile_store(ws)
    assert _store(ws, "select key from lookup") == sorted(_store(ws, "select key from lookup"))
    assert _store(ws, "select lookup_appended from meta") == [(0,)]


def test_an_unreadable_store_is_replaced_whole(ws):
    """The new store starts from a copy of the old file: one DuckDB cannot open (a disk
    fault, a foreign file) is not copied from, and every document is built."""
    before = _documents(ws)
    store_path(ws.lake_dir).write_bytes(b"not a database" * 1000)
    assert build_profile_store(ws)["documents_built"] == 3
    assert _documents(ws) == before


def test_documents_of_another_layout_are_not_copied(ws, monkeypatch):
    """A change to a section's sort order (the documents' SQL) builds every document."""
    from cdp.serving import profile_store

    sections = dict(profile_store.SECTIONS)
    sections["consents"] = ("consent", "channel, purpose")
    monkeypatch.setattr(profile_store, "SECTIONS", sections)
    assert build_profile_store(ws)["documents_built"] == 3
