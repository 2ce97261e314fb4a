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
from cdp.io.atomic import write_parquet
from cdp.profile import find, load, lookup_profiles, open_store
from cdp.serving.profile_store import build_profile_store, store_path
from cdp.workspace import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    ws.settings_file.write_text("default_region: US\n")
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U2", "U3"],
                "first_name": ["Mary", "Mary", "Ann"],
                "last_name": ["Jones", "Jones", "Lee"],
                "postal_code": ["48267", "10001", "94110"],
                "email_address": ["mary@x.com", None, "ann@x.com"],
                "phone_e164": ["+13133185461", None, "+442079460018"],
                "record_count": [2, 1, 1],
                "lifetime_value": [pa.scalar(701.08).as_py(), 0.0, 12.5],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "unified_contact_point.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U1", "U3", "U3"],
                "channel": ["email", "phone", "email", "phone"],
                "match_key": ["mary@x.com", "+13133185461", "ann@x.com", "+442079460018"],
                "contact_value": ["Mary@X.com", "+13133185461", "ann@x.com", "+442079460018"],
                "sources": [["crm", "shop"], ["crm"], ["crm"], ["crm"]],
                "contact_rank": [1, 1, 1, 1],
            }
        ),
    )
    write_parquet(
        ws.identity_dir / "unified_link_individual.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1", "U1", "U2", "U3"],
                "source_name": ["crm", "shop", "crm", "crm"],
                "source_record_id": ["c1", "s1", "c2", "c3"],
                "record_kind": ["person"] * 4,
                "linked_by": ["rule:same_email", "rule:same_email", "singleton", "singleton"],
                "match_probability": [1.0, 1.0, None, None],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "individual_consent.parquet",
        pa.table(
            {
                "unified_individual_id": ["U1"],
                "purpose": ["marketing"],
                "channel": ["email"],
                "status": ["withdrawn"],
                "is_granted": [False],
            }
        ),
    )
    write_parquet(
        ws.marts_dir / "segment_membership.parquet",
        pa.table({"segment_name": ["high_value"], "unified_individual_id": ["U1"]}),
    )
    build_profile_store(ws)
    return ws


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
