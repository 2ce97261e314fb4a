"""The `insights:` and `reconciliation:` settings, and how they reach dbt.

The insight formulas themselves are tested as dbt unit tests (`unit_tests:` in the yml
beside each model in dbt_models/models/marts), run by tests/test_pipeline.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cdp.config.settings import RECONCILED_FIELDS, Settings, load_settings
from cdp.errors import ConfigError
from cdp.harmonise.dbt_env import dbt_env, insight_env
from cdp.workspace import Workspace

TEMPLATE = Path(__file__).resolve().parent.parent / "cdp" / "templates" / "workspace" / "cdp.yml"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "cdp.yml"
    path.write_text(text)
    return load_settings(path)


def test_defaults():
    s = Settings()
    assert s.insights.reporting_currency == "USD"
    assert s.insights.as_of == "latest_event"
    assert s.insights.attribution_window_days == 7
    assert s.insights.recommendation_pairs == 25
    rec = s.reconciliation
    assert (rec.first_name, rec.last_name, rec.birth_date) == (
        "most_frequent",
        "most_recent",
        "most_frequent",
    )
    assert rec.source_priority == []


def test_the_template_shows_the_defaults():
    """`cdp init` writes cdp.yml with every default spelled out: it must not drift."""
    data = yaml.safe_load(TEMPLATE.read_text())
    defaults = Settings().model_dump()
    assert data["insights"] == defaults["insights"]
    assert data["reconciliation"] == defaults["reconciliation"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "reconciliation: {first_name: oldest}\n",
            "reconciliation.first_name: Input should be 'most_recent', 'most_frequent' or 'source_priority'",
        ),
        (
            "reconciliation: {birth_date: source_priority}\n",
            "reconciliation.source_priority: list the sources in order of trust (used by birth_date)",
        ),
        (
            "reconciliation: {source_priority: [CRM Contacts]}\n",
            "reconciliation.source_priority: 'CRM Contacts' is not a source name",
        ),
        ("reconciliation: {nickname: never}\n", "reconciliation.nickname: unknown key"),
        (
            "insights: {as_of: yesterday}\n",
            "insights.as_of: expected latest_event, today or an ISO date",
        ),
        ("insights: {reporting_currency: EURO}\n", "insights.reporting_currency: expected a three"),
        ("insights: {attribution_window_days: 0}\n", "insights.attribution_window_days:"),
    ],
)
def test_a_bad_setting_is_one_line_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    shown = str(err.value)
    assert "\n" not in shown
    assert "cdp.yml" in shown and message in shown


def test_an_iso_date_and_a_lowercase_currency_are_read(tmp_path):
    s = _load(tmp_path, "insights: {as_of: 2024-06-30, reporting_currency: eur}\n")
    assert s.insights.as_of == "2024-06-30"  # YAML reads it as a date
    assert s.insights.reporting_currency == "EUR"


def test_settings_reach_dbt_as_environment_variables(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    ws.settings_file.write_text(
        "insights: {reporting_currency: GBP, as_of: today, attribution_window_days: 3}\n"
        "reconciliation:\n"
        "  birth_date: source_priority\n"
        "  email: most_frequent\n"
        "  source_priority: [crm_contacts, ecommerce_accounts]\n"
    )
    env = dbt_env(ws)
    assert env["CDP_REPORTING_CURRENCY"] == "GBP"
    assert env["CDP_AS_OF"] == "today"
    assert env["CDP_ATTRIBUTION_WINDOW_DAYS"] == "3"
    assert env["CDP_RECONCILE_BIRTH_DATE"] == "source_priority"
    assert env["CDP_RECONCILE_EMAIL"] == "most_frequent"
    assert env["CDP_RECONCILE_FIRST_NAME"] == "most_frequent"  # a default
    assert env["CDP_SOURCE_PRIORITY"] == "crm_contacts,ecommerce_accounts"
    assert {f"CDP_RECONCILE_{f.upper()}" for f in RECONCILED_FIELDS} <= set(insight_env(Settings()))


def test_an_undeclared_source_in_source_priority_is_refused(tmp_path):
    from cdp.harmonise.dbt_env import check_source_priority

    settings = _load(tmp_path, "reconciliation: {source_priority: [crm_contacts, crm]}\n")
    check_source_priority(settings, {"crm_contacts", "crm"}, tmp_path / "cdp.yml")
    with pytest.raises(
        ConfigError,
        match=r"reconciliation.source_priority: unknown source 'crm' \(declared: crm_contacts\)",
    ):
        check_source_priority(settings, {"crm_contacts"}, tmp_path / "cdp.yml")
