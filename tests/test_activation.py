"""Segments, audiences and exports on a small hand-made customer_360.

The generated dbt models (cdp.activate.compile) and the project's history model are
rendered with the same Jinja dbt uses (ref, config, env_var) and run in DuckDB over
hand-made tables, so their SQL is tested without a whole pipeline run; the pipeline test
runs them through dbt for real.
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
from pathlib import Path

import duckdb
import jinja2
import pyarrow as pa
import pytest

from cdp.activate.compile import (
    audience_model,
    audience_sql,
    ensure_folders,
    membership_sql,
    segment_model,
    segment_sql,
)
from cdp.activate.exports import export_activation
from cdp.activate.specs import ActivationSpec, SegmentSpec, load_activations, load_segments
from cdp.errors import ConfigError
from cdp.harmonise.dbt_env import DBT_PROJECT_DIR
from cdp.workspace import Workspace

COLUMNS = (
    "unified_individual_id",
    "first_name",
    "last_name",
    "email_address",
    "email_match_key",
    "phone_e164",
    "order_count",
    "total_spend",
)
HISTORY = (DBT_PROJECT_DIR / "models/marts/segments/segment_membership_history.sql").read_text()


def customers(rows: list[tuple]) -> pa.Table:
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)})


BASE = [
    ("u1", "Ann", "Lee", "ann@x.com", "ann@x.com", "+14155550101", 3, 10.0),
    ("u2", "Bob", "Ray", "bob@x.com", "bob@x.com", None, 5, 500.0),
    ("u3", "Cy", "Ode", None, None, "+14155550103", 4, 80.0),
    ("u4", "Di", "Fox", "di@x.com", "di@x.com", None, 0, 0.0),
]
# u1 withdrew email consent, u2 granted it, u3 granted sms.
CONSENT = [
    ("u1", "marketing", "email", "withdrawn", False),
    ("u2", "marketing", "email", "granted", True),
    ("u3", "marketing", "sms", "granted", True),
]


class Models:
    """The generated models of one workspace, run in DuckDB like dbt would."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        ws.ensure_dirs()
        ensure_folders(ws.marts_dir)

    def run(self, segments, activations=(), rows=BASE, consent=CONSENT, run_id="r1", at=None):
        con = duckdb.connect()
        con.register("customer_360_data", customers(rows))
        con.execute("create table customer_360 as select * from customer_360_data")
        con.execute(
            "create table individual_consent as select * from (values "
            + ", ".join(
                f"('{u}', '{p}', '{c}', '{s}', {str(g).lower()})" for u, p, c, s, g in consent
            )
            + ") t (unified_individual_id, purpose, channel, status, is_granted)"
            if consent
            else "create table individual_consent (unified_individual_id varchar, purpose varchar, "
            "channel varchar, status varchar, is_granted boolean)"
        )
        env = {
            "CDP_DBT_WORKSPACE": str(self.ws.root),  # absolute: rendered here, not in dbt
            "CDP_RUN_ID": run_id,
            "CDP_RUN_STARTED": at or "2026-01-01 00:00:00",
        }
        for s in segments:
            con.execute(f"create view {segment_model(s.name)} as {_render(segment_sql(s), env)}")
        self._write(con, membership_sql(list(segments)), env)
        con.execute(
            f"create view segment_membership as select * from "
            f"read_parquet('{self.ws.marts_dir}/segment_membership.parquet')"
        )
        self._write(con, HISTORY, env)
        for a in activations:
            self._write(con, audience_sql(a), env)
        return con

    def _write(self, con, sql: str, env: dict) -> None:
        location = re.search(r"location=(.+?),\s*tags=", sql, re.S).group(1)
        path = eval(  # the config's location expression: env_var(...) ~ '...' ~ env_var(...)
            location.replace("~", "+"),
            {"env_var": lambda k, d=None: env.get(k, d)},
        )
        # (the history's location names the run, rendered when the model runs)
        path = _render(path, env)
        con.execute(f"copy ({_render(sql, env)}) to '{path}' (format parquet)")


def _render(sql: str, env: dict) -> str:
    template = jinja2.Environment().from_string(sql)
    return template.render(
        ref=lambda name: name,
        config=lambda **_: "",
        env_var=lambda k, d=None: env.get(k, d),
        cdp_run_id=lambda: env["CDP_RUN_ID"],
        cdp_run_started=lambda: env["CDP_RUN_STARTED"],
        # the default__ (DuckDB) versions of the engine macros (macros/engine/)
        cdp_type=lambda t: t,
        cdp_sha256=lambda e: f"sha256({e})",
        by_engine=lambda duckdb_sql, spark_sql: duckdb_sql,
        read_parquet_folder=lambda f: f"read_parquet('{f}/*.parquet', union_by_name = true)",
    )


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


def _members(ws, segment: str) -> list[str]:
    return [
        r[0]
        for r in duckdb.execute(
            f"select unified_individual_id from read_parquet('{ws.marts_dir}/segment_membership.parquet') "
            f"where segment_name = '{segment}' order by 1"
        ).fetchall()
    ]


def _history(ws) -> list[tuple]:
    return duckdb.execute(
        f"select run_id, segment_name, unified_individual_id, event from "
        f"read_parquet('{ws.marts_dir}/segment_membership_history/*.parquet', union_by_name=true) "
        "where unified_individual_id is not null order by all"
    ).fetchall()


def test_segments_with_include_and_exclude(ws):
    specs = [
        SegmentSpec(name="buyers", filter="order_count >= 3"),
        SegmentSpec(name="big", filter="total_spend > 100"),
        SegmentSpec(name="buyers_not_big", filter="false", include=["buyers"], exclude=["big"]),
        SegmentSpec(name="everyone", filter="false", include=["buyers", "big"]),
    ]
    Models(ws).run(specs)
    assert _members(ws, "buyers") == ["u1", "u2", "u3"]
    assert _members(ws, "big") == ["u2"]
    assert _members(ws, "buyers_not_big") == ["u1", "u3"]
    assert _members(ws, "everyone") == ["u1", "u2", "u3"]


def test_history_writes_each_entry_and_exit_once_and_answers_who_was_in(ws):
    models = Models(ws)
    buyers = [SegmentSpec(name="buyers", filter="order_count >= 3")]
    models.run(buyers, run_id="r1", at="2026-01-01 00:00:00")
    later = [BASE[0], BASE[1], (*BASE[2][:6], 0, 80.0), (*BASE[3][:6], 9, 0.0)]  # u3 out, u4 in
    models.run(buyers, rows=later, run_id="r2", at="2026-02-01 00:00:00")
    models.run(buyers, rows=later, run_id="r2", at="2026-02-01 00:00:00")  # a rerun of r2
    models.run(buyers, rows=later, run_id="r3", at="2026-03-01 00:00:00")  # nothing changes
    assert _history(ws) == [
        ("r1", "buyers", "u1", "entered"),
        ("r1", "buyers", "u2", "entered"),
        ("r1", "buyers", "u3", "entered"),
        ("r2", "buyers", "u3", "exited"),
        ("r2", "buyers", "u4", "entered"),
    ]
    # Who was in the segment on 15 January: the latest event before the date is `entered`.
    on = duckdb.execute(
        f"""
        select unified_individual_id from read_parquet(
            '{ws.marts_dir}/segment_membership_history/*.parquet', union_by_name=true)
        where segment_name = 'buyers' and event_ts <= timestamp '2026-01-15'
        qualify row_number() over (partition by unified_individual_id order by event_ts desc) = 1
            and event = 'entered'
        order by 1
        """
    ).fetchall()
    assert [r[0] for r in on] == ["u1", "u2", "u3"]


def _write_segment(ws, name: str, body: str) -> None:
    ws.segments_dir.mkdir(parents=True, exist_ok=True)
    (ws.segments_dir / f"{name}.yml").write_text(f"name: {name}\n{body}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "filter: \"false) union all select content from read_text('/etc/hostname') where (true\"",
            r"segments/evil\.yml: filter: not one SQL expression",
        ),
        (
            "filter: \"read_text('/etc/hostname') is not null\"",
            r"function read_text\(\) is not allowed",
        ),
        ('filter: "order_count in (select 1)"', r"subquery is not allowed"),
        ('filter: "no_such_column > 1"', r"unknown column 'no_such_column'"),
        (
            "filter: \"order_count > 1; copy customer_360 to '../x.csv'\"",
            r"segments/evil\.yml: filter",
        ),
    ],
)
def test_a_filter_that_is_not_one_expression_over_known_columns_is_refused(ws, body, message):
    _write_segment(ws, "evil", body)
    with pytest.raises(ConfigError, match=message):
        load_segments(ws.segments_dir)


def test_a_segment_cycle_is_refused_naming_the_files(ws):
    _write_segment(ws, "a", "include: [b]\n")
    _write_segment(ws, "b", "exclude: [a]\n")
    with pytest.raises(
        ConfigError, match=r"cycle: (a\.yml -> b\.yml -> a\.yml|b\.yml -> a\.yml -> b\.yml)"
    ):
        load_segments(ws.segments_dir)


def test_unknown_export_field_is_a_config_error(ws):
    _write_segment(ws, "buyers", "filter: order_count > 1\n")
    ws.activations_dir.mkdir(parents=True)
    (ws.activations_dir / "m.yml").write_text(
        "name: m\nsegment: buyers\nchannel: email\nfields: [nope]\n"
    )
    with pytest.raises(
        ConfigError, match=r"activations/m\.yml: fields: unknown customer_360 column"
    ):
        load_activations(ws.activations_dir, load_segments(ws.segments_dir))


MAIL = ActivationSpec(
    name="mail",
    segment="buyers",
    channel="email",
    fields=["unified_individual_id", "email_address"],
)
BUYERS = [SegmentSpec(name="buyers", filter="order_count >= 3")]


def test_email_export_keeps_only_consented_members_with_an_email(ws):
    Models(ws).run(BUYERS, [MAIL])
    result = export_activation(ws, MAIL, run_id="r1")
    # u1 withdrew, u2 granted, u3 has no email.
    assert (result.rows, result.excluded_no_consent, result.excluded_no_contact_point) == (1, 1, 1)
    out = ws.exports_dir / "mail" / "r1"
    assert (out / "mail.csv").read_text().splitlines() == [
        "unified_individual_id,email_address",
        "u2,bob@x.com",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 1 and manifest["consent_channel"] == "email"
    audience = duckdb.execute(
        f"select unified_individual_id, consent_status, excluded_reason from "
        f"read_parquet('{ws.marts_dir}/audiences/mail.parquet') order by 1"
    ).fetchall()
    assert audience == [
        ("u1", "withdrawn", "no consent"),
        ("u2", "granted", None),
        ("u3", "none", "no contact point"),
    ]


def test_sms_export_uses_phone_consent_and_hashing(ws):
    sms = ActivationSpec(
        name="sms",
        segment="buyers",
        channel="sms",
        format="jsonl",
        fields=["unified_individual_id", "phone_e164"],
        hash_identifiers=True,
    )
    Models(ws).run(BUYERS, [sms])
    assert export_activation(ws, sms, run_id="r1").rows == 1
    row = json.loads((ws.exports_dir / "sms" / "r1" / "sms.jsonl").read_text().splitlines()[0])
    assert row["unified_individual_id"] == "u3"
    assert len(row["phone_e164_sha256"]) == 64 and "+1415" not in json.dumps(row)


def test_delta_export_lists_who_was_added_and_who_left(ws):
    mail = MAIL.model_copy(update={"delta": True})
    models = Models(ws)
    models.run(BUYERS, [mail])
    first = export_activation(ws, mail, run_id="r1")
    assert (first.added, first.removed, first.previous_run_id) == (1, 0, None)
    # u2 withdraws; u4 starts buying and grants consent.
    rows = [*BASE[:3], (*BASE[3][:6], 7, 0.0)]
    consent = [
        ("u2", "marketing", "email", "withdrawn", False),
        ("u4", "marketing", "email", "granted", True),
    ]
    models.run(BUYERS, [mail], rows=rows, consent=consent, run_id="r2")
    second = export_activation(ws, mail, run_id="r2")
    assert (second.added, second.removed, second.previous_run_id) == (1, 1, "r1")
    out = ws.exports_dir / "mail" / "r2"
    assert (out / "added.csv").read_text().splitlines()[1:] == ["u4,di@x.com"]
    assert (out / "removed.csv").read_text().splitlines()[1:] == ["u2,bob@x.com"]
    assert (out / "mail.csv").read_text().splitlines()[1:] == ["u4,di@x.com"]
    # Exporting r2 again (a rerun) compares with r1 again, not with itself.
    assert export_activation(ws, mail, run_id="r2").removed == 1


def test_retention_keeps_the_newest_exports(ws):
    Models(ws).run(BUYERS, [MAIL])
    for run in ("r1", "r2", "r3"):
        export_activation(ws, MAIL, run_id=run, keep=2)
    assert sorted(p.name for p in (ws.exports_dir / "mail").iterdir()) == ["r2", "r3"]


def test_csv_export_neutralises_formulas_and_is_private(ws):
    formula = '=HYPERLINK("http://x","y")'
    rows = [("u2", formula, "@SUM(A1)", "bob@x.com", "bob@x.com", "+14155550101", -3, -2.5)]
    spec = ActivationSpec(
        name="mail",
        segment="all",
        channel="email",
        fields=["first_name", "last_name", "phone_e164", "order_count", "total_spend"],
    )
    Models(ws).run([SegmentSpec(name="all", filter="true")], [spec], rows=rows)
    assert export_activation(ws, spec, run_id="r1").rows == 1
    out = ws.exports_dir / "mail" / "r1"
    (row,) = csv.DictReader(io.StringIO((out / "mail.csv").read_text()))
    assert row == {
        "first_name": "'" + formula,
        "last_name": "'@SUM(A1)",
        "phone_e164": "+14155550101",  # a plain number cannot run; the SMS tool needs it whole
        "order_count": "-3",  # numbers are never touched
        "total_spend": "-2.5",
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in ("mail.csv", "manifest.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name


def test_jsonl_export_is_private_and_keeps_values_as_they_are(ws):
    spec = ActivationSpec(
        name="ads", segment="all", channel="ads", format="jsonl", fields=["first_name"]
    )
    Models(ws).run([SegmentSpec(name="all", filter="true")], [spec])
    export_activation(ws, spec, run_id="r1")
    out = ws.exports_dir / "ads" / "r1"
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}


def test_a_killed_export_leaves_no_half_written_file(ws):
    Models(ws).run(BUYERS, [MAIL])
    staged = ws.exports_dir / "mail" / ".tmp-r0"
    staged.mkdir(parents=True)
    (staged / "mail.csv").write_text("u2,bob@x.com\n")  # what a kill mid-write leaves
    export_activation(ws, MAIL, run_id="r1")
    assert sorted(p.name for p in (ws.exports_dir / "mail").iterdir()) == ["r1"]


def test_generated_models_name_their_yaml(ws):
    assert "segments/buyers.yml" in segment_sql(BUYERS[0])
    assert "activations/mail.yml" in audience_sql(MAIL)
    assert audience_model("mail") == "audience__mail" and segment_model("a") == "segment__a"
    assert Path(DBT_PROJECT_DIR / "models/marts/segments/_segments__models.yml").exists()
