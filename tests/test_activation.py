"""Segments and consent-checked exports on a small hand-made customer_360."""

from __future__ import annotations

import csv
import io
import json
import stat

import duckdb
import pyarrow as pa
import pytest

from cdp.activate.exports import export_activation
from cdp.activate.segments import evaluate_segments
from cdp.activate.specs import ActivationSpec, SegmentSpec, load_segments
from cdp.errors import ConfigError
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path)
    ws.ensure_dirs()
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table(
            {
                "unified_individual_id": ["u1", "u2", "u3", "u4"],
                "first_name": ["Ann", "Bob", "Cy", "Di"],
                "email_address": ["ann@x.com", "bob@x.com", None, "di@x.com"],
                "email_match_key": ["ann@x.com", "bob@x.com", None, "di@x.com"],
                "phone_e164": ["+14155550101", None, "+14155550103", None],
                "order_count": [3, 5, 4, 0],
                "total_spend": [10.0, 500.0, 80.0, 0.0],
            }
        ),
    )
    write_parquet(
        ws.harmonised_dir / "int_contact_point_consents_deduplicated.parquet",
        pa.table(
            {
                "email_match_key": ["ann@x.com", "ann@x.com", "bob@x.com", None],
                "phone_e164": [None, None, None, "+14155550103"],
                "purpose": ["marketing"] * 4,
                "channel": ["email", "email", "email", "sms"],
                # Ann granted then withdrew: the latest wins.
                "status": ["granted", "withdrawn", "granted", "granted"],
                "captured_ts": pa.array([1_000, 2_000, 1_000, 1_000], pa.timestamp("s")),
            }
        ),
    )
    return ws


def test_segments_with_include_exclude_and_history(ws):
    specs = [
        SegmentSpec(name="buyers", filter="order_count >= 3"),
        SegmentSpec(name="big", filter="total_spend > 100"),
        SegmentSpec(name="buyers_not_big", filter="false", include=["buyers"], exclude=["big"]),
    ]
    result = evaluate_segments(ws, specs, run_id="r1")
    assert result.sizes == {"buyers": 3, "big": 1, "buyers_not_big": 2}
    rows = duckdb.execute(
        f"select segment_name, unified_individual_id from read_parquet('{ws.marts_dir}/segment_membership.parquet') "
        "where segment_name = 'buyers_not_big' order by 2"
    ).fetchall()
    assert rows == [("buyers_not_big", "u1"), ("buyers_not_big", "u3")]
    # The same data again: nothing enters or leaves.
    again = evaluate_segments(ws, specs, run_id="r2")
    assert sum(again.entered.values()) == 0 and sum(again.exited.values()) == 0


def test_bad_filter_names_the_segment_file(ws):
    with pytest.raises(ConfigError, match=r"segments/oops.yml: filter"):
        evaluate_segments(ws, [SegmentSpec(name="oops", filter="no_such_column > 1")], "r1")


def test_segment_cycle_is_refused(ws, tmp_path):
    (ws.segments_dir).mkdir(exist_ok=True)
    (ws.segments_dir / "a.yml").write_text("name: a\ninclude: [b]\n")
    (ws.segments_dir / "b.yml").write_text("name: b\ninclude: [a]\n")
    specs = load_segments(ws.segments_dir)
    with pytest.raises(ConfigError, match="cycle"):
        evaluate_segments(ws, specs, "r1")


def test_email_export_keeps_only_granted_latest_consent(ws):
    evaluate_segments(ws, [SegmentSpec(name="buyers", filter="order_count >= 3")], "r1")
    spec = ActivationSpec(
        name="mail",
        segment="buyers",
        channel="email",
        fields=["unified_individual_id", "email_address"],
    )
    result = export_activation(ws, spec, run_id="r1")
    # u1 withdrew, u2 granted, u3 has no email.
    assert (result.rows, result.excluded_no_consent, result.excluded_no_contact_point) == (1, 1, 1)
    out = ws.exports_dir / "mail" / "r1"
    lines = (out / "mail.csv").read_text().splitlines()
    assert lines == ["unified_individual_id,email_address", "u2,bob@x.com"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 1 and manifest["consent_channel"] == "email"


def test_sms_export_uses_phone_consent_and_hashing(ws):
    evaluate_segments(ws, [SegmentSpec(name="buyers", filter="order_count >= 3")], "r1")
    spec = ActivationSpec(
        name="sms",
        segment="buyers",
        channel="sms",
        format="jsonl",
        fields=["unified_individual_id", "phone_e164"],
        hash_identifiers=True,
    )
    result = export_activation(ws, spec, run_id="r1")
    assert result.rows == 1
    row = json.loads((ws.exports_dir / "sms" / "r1" / "sms.jsonl").read_text().splitlines()[0])
    assert row["unified_individual_id"] == "u3"
    assert len(row["phone_e164_sha256"]) == 64 and "+1415" not in json.dumps(row)


def test_unknown_export_field_is_a_config_error(ws):
    evaluate_segments(ws, [SegmentSpec(name="buyers", filter="true")], "r1")
    spec = ActivationSpec(name="m", segment="buyers", channel="email", fields=["nope"])
    with pytest.raises(
        ConfigError, match=r"activations/m\.yml: fields: unknown customer_360 column"
    ):
        export_activation(ws, spec, run_id="r1")


def test_csv_export_neutralises_formulas_and_is_private(ws):
    formula = '=HYPERLINK("http://x","y")'
    write_parquet(
        ws.marts_dir / "customer_360.parquet",
        pa.table(
            {
                "unified_individual_id": ["u2"],
                "first_name": [formula],
                "last_name": ["@SUM(A1)"],
                "note": ["\tTab"],
                "email_address": ["bob@x.com"],
                "email_match_key": ["bob@x.com"],
                "phone_e164": ["+14155550101"],
                "order_count": [-3],
                "total_spend": [-2.5],
            }
        ),
    )
    evaluate_segments(ws, [SegmentSpec(name="all", filter="true")], "r1")
    fields = ["first_name", "last_name", "note", "phone_e164", "order_count", "total_spend"]
    spec = ActivationSpec(name="mail", segment="all", channel="email", fields=fields)
    assert export_activation(ws, spec, run_id="r1").rows == 1
    out = ws.exports_dir / "mail" / "r1"
    (row,) = csv.DictReader(io.StringIO((out / "mail.csv").read_text()))
    assert row == {
        "first_name": "'" + formula,
        "last_name": "'@SUM(A1)",
        "note": "'\tTab",
        "phone_e164": "+14155550101",  # a plain number cannot run; the SMS tool needs it whole
        "order_count": "-3",  # numbers are never touched
        "total_spend": "-2.5",
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in ("mail.csv", "manifest.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name


def test_jsonl_export_is_private_and_keeps_values_as_they_are(ws):
    evaluate_segments(ws, [SegmentSpec(name="all", filter="true")], "r1")
    spec = ActivationSpec(
        name="ads", segment="all", channel="ads", format="jsonl", fields=["first_name"]
    )
    export_activation(ws, spec, run_id="r1")
    out = ws.exports_dir / "ads" / "r1"
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
