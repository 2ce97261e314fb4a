"""A headerless file's first row is data: its values never reach a warning or a log line."""

from __future__ import annotations

import dagster as dg

from cdp.ingest import ingest_source
from dagster_project.assets.ingestion import build_ingestion_asset
from dagster_project.resources import CdpResource
from tests.ingest.conftest import HEADER

EMAIL, NAME = "zoe.secret@example.com", "Zoevalue"
HEADERLESS = f"7,{NAME},Quill,{EMAIL},33,1991-04-05,2024-01-01\n8,Al,Bo,al@x.com,20,,\n"
GOOD = "1,Ann,Lee,ann@x.com,41,1985-02-03,2024-01-01 10:00:00\n"


def _land_three(env) -> None:
    """A good file, a headerless one (its row is the header), a good one again: so the
    data row shows up as missing, new and vanished columns in turn."""
    env.land("people", "a.csv", HEADER + GOOD)
    env.land("people", "b.csv", HEADERLESS)
    env.land("people", "c.csv", HEADER + GOOD.replace("1,", "2,", 1))


def _leaks(lines: list[str]) -> list[str]:
    return [line for line in lines if EMAIL in line or NAME in line or "Quill" in line]


def test_headerless_csv_values_never_appear_in_warnings(env):
    _land_three(env)
    result = ingest_source(env.ws, env.spec("people"))
    assert result.rows_in == result.rows_kept + result.rows_quarantined
    assert _leaks(result.warnings) == []
    b = [w for w in result.warnings if w.startswith("landing/people/b.csv")]
    assert any("missing from the data: dob, email, first, id, last, updated" in w for w in b)
    assert any("is the header row missing?" in w for w in b)
    assert any("7 undeclared column name(s) (not shown: they may be data)" in w for w in b)
    c = [w for w in result.warnings if w.startswith("landing/people/c.csv")]
    assert any("no longer present: 7 undeclared column name(s)" in w for w in c)


def test_headerless_csv_values_never_appear_in_the_dagster_log(env):
    _land_three(env)
    asset = build_ingestion_asset(env.spec("people"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [asset],
            resources={"cdp": CdpResource(workspace_dir=str(env.ws.root))},
            instance=instance,
        )
        assert result.success
        messages = [e.user_message or e.message or "" for e in instance.all_logs(result.run_id)]
    assert _leaks(messages) == []
    assert any("undeclared column name(s)" in m for m in messages)  # the warnings were logged
