"""The dbt layer on the shared workspace (conftest.py): real ingestion, real dbt build.

The second half is the mapping language end to end on it: YAML -> ingestion -> generated
dbt -> harmonised rows. Per-row phone regions, date format lists, value maps, rows naming
their person by email or phone, full names split by nameparser, locale numbers, and the
counts of values the mapping could not use (int_parse_failures, shown in
ingest_data_quality). One file, so that the workspace is built once: pytest-xdist gives
each file to one worker, and a worker builds each package fixture its files use."""

from __future__ import annotations

import duckdb
import pytest

from cdp.errors import CdpError
from cdp.harmonise.dbt_env import connect_dbt_database, run_dbt
from cdp.harmonise.normalise import fold, phone_e164

pytestmark = [pytest.mark.takes(130), pytest.mark.usefixtures("warm_dbt_commands")]


def _rows(ws, model, order="source_record_id", where="source_name = 'contacts'"):
    """A harmonised table's rows as dicts (by default the contacts source's)."""
    cur = duckdb.connect().execute(
        f"select * from '{ws.harmonised_dir / model}.parquet' where {where} order by {order}"
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@pytest.mark.slow
def test_one_person_source_builds_every_object(built):
    # Objects no source maps exist, typed and empty, so marts and identity always run.
    # (dbt-duckdb stores an empty external model as one all-null row; its view hides it.)
    con = connect_dbt_database(built)
    for model in ("int_sales_order_lines_deduplicated", "int_products_deduplicated"):
        assert con.execute(f"select count(*) from {model}").fetchone()[0] == 0
    con.close()
    from cdp.catalog import connect_catalog, rebuild_catalog

    rebuild_catalog(built)
    cat = connect_catalog(built)
    assert cat.execute("select count(*) from int_products_deduplicated").fetchone()[0] == 0


@pytest.mark.slow
def test_names_unicode_titles_and_suffixes(built):
    people = {r["source_record_id"]: r for r in _rows(built, "int_individuals_deduplicated")}
    assert people["1"]["first_name"] == "José" and people["1"]["first_name_key"] == "jose"
    assert people["1"]["last_name"] == "García" and people["1"]["suffix"] == "Jr"
    assert people["2"]["salutation"] == "Dr" and people["2"]["first_name"] == "Łukasz"
    assert people["2"]["first_name_key"] == "lukasz"
    assert people["3"]["last_name_key"] == "obrien"


@pytest.mark.slow
def test_impossible_dates_are_null_and_latest_version_wins(built):
    people = {r["source_record_id"]: r for r in _rows(built, "int_individuals_deduplicated")}
    assert str(people["1"]["birth_date"]) == "1980-02-29"  # a real leap day
    assert people["2"]["birth_date"] is None  # 30 February
    assert str(people["3"]["birth_date"]) == "1990-01-01"  # from the 2025 version of record 3
    assert len(people) == 3


@pytest.mark.slow
def test_emails_gmail_dots_and_plus_tags(built):
    emails = {
        r["source_record_id"]: r for r in _rows(built, "int_contact_point_emails_deduplicated")
    }
    assert emails["1"]["email_address"] == "john.smith+news@gmail.com"  # kept as given, lowercased
    assert emails["1"]["email_match_key"] == emails["2"]["email_match_key"] == "johnsmith@gmail.com"
    assert emails["3"]["email_address"] == "zoe@x.com" and emails["3"]["is_valid"]


@pytest.mark.slow
def test_international_phones_to_e164_and_invalid_flagged(built):
    phones = {
        r["source_record_id"]: r for r in _rows(built, "int_contact_point_phones_deduplicated")
    }
    assert phones["1"]["phone_e164"] == "+14152345678"
    assert phones["2"]["phone_e164"] == "+442079460958"
    assert phones["3"]["phone_e164"] is None and phones["3"]["is_valid"] is False  # "12"


@pytest.mark.slow
def test_addresses_and_postal_codes(built):
    addresses = {
        r["source_record_id"]: r for r in _rows(built, "int_contact_point_addresses_deduplicated")
    }
    assert addresses["1"]["postal_code_key"] == "94110"  # ZIP+4 cut
    assert addresses["2"]["postal_code_key"] == "SW1A1AA"  # spaces removed
    assert addresses["1"]["address_line1_key"] == "12 oak st apt 4"
    assert addresses["3"]["address_line1_key"] == "7 elm ave apt 3"


@pytest.mark.slow
def test_dbt_tests_catch_a_broken_invariant(built, tmp_path):
    """A model's rules are one data test (tests/generic/invariants.sql); when it fails,
    the error names each rule broken and how many rows break it, and no value."""
    # Break the data behind the model: a second copy of one email contact point (its id
    # no longer unique) with no validity and an invalid reason no rule gives.
    con = duckdb.connect()
    path = built.harmonised_dir / "int_contact_point_emails_deduplicated.parquet"
    con.execute(
        f"copy (select * from '{path}' union all (select * replace (null as is_valid, "
        f"'mistyped' as invalid_reason) from '{path}' limit 1)) to '{tmp_path}/dup.parquet'"
    )
    email = con.execute(f"select email_address from '{path}' limit 1").fetchone()[0]
    con.close()
    pristine = path.read_bytes()
    path.write_bytes((tmp_path / "dup.parquet").read_bytes())
    try:
        with pytest.raises(CdpError) as failed:
            run_dbt(
                built,
                ["test", "--select", "int_contact_point_emails_deduplicated,test_type:generic"],
            )
    finally:
        path.write_bytes(pristine)
    assert str(failed.value) == (
        "dbt test failed: dbt test invariants_int_contact_point_emails_deduplicated: "
        "Got 3 results, configured to fail if != 0 (accepted_values(invalid_reason): 1 row(s); "
        "not_null(is_valid): 1 row(s); unique(contact_point_id): 1 value(s) held by several rows)"
    )
    assert email not in str(failed.value)


def test_python_normalisers():
    assert phone_e164("+1 123 456 7890") is None  # no US area code starts with 1
    assert phone_e164("020 7946 0958", "GB") == "+442079460958"
    assert fold("  Ø'Brien-Smith ") == "obriensmith"
    assert fold(None) is None


def test_data_model_doc_is_up_to_date():
    from cdp.harmonise.docs import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render(), "run: python -m cdp.harmonise.docs"


@pytest.mark.slow
def test_dbt_docs_generate(built):
    run_dbt(built, ["docs", "generate"])
    assert (built.dbt_target_dir / "catalog.json").exists()


def _dbt_duckdb_memory(ws) -> dict:
    """The memory settings of DuckDB inside dbt, asked through dbt itself."""
    import json

    from cdp.harmonise.dbt_env import dbt_resource

    sql = (
        "select current_setting('block_allocator_memory') as kept, "
        "current_setting('memory_limit') as ceiling"
    )
    invocation = dbt_resource(ws).cli(
        ["show", "--inline", sql, "--output", "json"], target_path=ws.dbt_target_dir
    )
    for event in invocation.stream_raw_events():
        if event.raw_event["info"]["name"] == "ShowNode":
            return json.loads(event.raw_event["data"]["preview"])[0]
    raise AssertionError("dbt show printed no rows")


def test_dbt_keeps_duckdb_buffers_within_its_ceiling(built, monkeypatch):
    # cdp/io/duckdb_memory.py: two thirds of the ceiling, kept between models
    monkeypatch.setenv("CDP_DBT_MEMORY_LIMIT", "1500MB")
    monkeypatch.delenv("CDP_DBT_BLOCK_MEMORY", raising=False)
    assert _dbt_duckdb_memory(built) == {"kept": "953.0 MiB", "ceiling": "1.3 GiB"}
    # the user's choice reaches DuckDB as given
    monkeypatch.setenv("CDP_DBT_BLOCK_MEMORY", "256MB")
    assert _dbt_duckdb_memory(built)["kept"] == "244.1 MiB"


def test_the_kept_buffers_follow_the_ceiling_or_the_users_choice(monkeypatch):
    from cdp.io.duckdb_memory import block_allocator_memory

    monkeypatch.delenv("CDP_DBT_BLOCK_MEMORY", raising=False)
    assert block_allocator_memory("3GB") == "1907MiB"
    assert block_allocator_memory("1.5 GiB") == "1024MiB"
    # a ceiling that is not a size (a share of the machine) keeps nothing
    assert block_allocator_memory("50%") == "0 bytes"
    monkeypatch.setenv("CDP_DBT_BLOCK_MEMORY", "0")
    assert block_allocator_memory("3GB") == "0 bytes"
    monkeypatch.setenv("CDP_DBT_BLOCK_MEMORY", "1GB")
    assert block_allocator_memory("3GB") == "1GB"


# --- the mapping language ------------------------------------------------------------


SOURCED = "source_name is not null"  # every source's rows, without dbt's empty-model row


def _by_id(ws, model, source):
    return {
        r["source_record_id"]: r
        for r in _rows(ws, model, where=SOURCED)
        if r["source_name"] == source
    }


@pytest.mark.slow
def test_full_names_are_split_and_explicit_fields_win(built):
    people = _by_id(built, "int_individuals_deduplicated", "people")
    juan = people["1"]
    assert (juan["salutation"], juan["first_name"], juan["middle_name"]) == (
        "Dr.",
        "Juan",
        "Q. Xavier",
    )
    assert (juan["last_name"], juan["suffix"]) == ("de la Vega", "III")
    assert juan["full_name"] == "Dr. Juan Q. Xavier de la Vega III"
    assert people["2"]["first_name"] == "Annie"  # mapped first_name wins over "Ann"
    assert people["2"]["last_name"] == "Lee"  # "Lee, Ann": last name first
    assert people["3"]["first_name_key"] == "bob"


@pytest.mark.slow
def test_date_format_list_tries_each_in_order(built):
    people = _by_id(built, "int_individuals_deduplicated", "people")
    assert str(people["1"]["birth_date"]) == "1980-02-29"
    assert str(people["2"]["birth_date"]) == "1952-03-25"
    assert str(people["3"]["birth_date"]) == "1943-11-16"
    assert people["4"]["birth_date"] is None  # 20040312 fits none of the three


@pytest.mark.slow
def test_phone_country_per_row(built):
    phones = _by_id(built, "int_contact_point_phones_deduplicated", "people")
    assert phones["1"]["phone_e164"] == "+442079460958"  # GB row
    assert phones["2"]["phone_e164"] == "+14152345678"  # US row


def test_phone_country_does_not_depend_on_row_order():
    from cdp.harmonise.normalise import register_functions

    con = duckdb.connect()
    register_functions(con)
    rows = [("020 7946 0958", "GB"), ("(415) 234-5678", "US")]
    for ordered in (rows, rows[::-1]):
        values = ", ".join(f"('{n}', '{r}')" for n, r in ordered)
        got = dict(
            con.execute(f"select r, cdp_phone_e164(n, r) from (values {values}) t(n, r)").fetchall()
        )
        assert got == {"GB": "+442079460958", "US": "+14152345678"}


@pytest.mark.slow
def test_concatenated_columns_still_join(built):
    addresses = _by_id(built, "int_contact_point_addresses_deduplicated", "people")
    assert addresses["1"]["address_line1"] == "12 High Road"
    assert addresses["2"]["address_line1"] == "Oak Street"  # a missing part is skipped
    assert addresses["3"]["address_line1"] == "7"


@pytest.mark.slow
def test_rows_naming_their_person_by_email_or_phone(built):
    orders = _by_id(built, "int_sales_orders_deduplicated", "orders")
    assert orders["o1"]["individual_email_match_key"] == "annlee@gmail.com"
    assert orders["o1"]["individual_source_record_id"] is None
    assert orders["o1"]["individual_source_name"] is None
    assert orders["o2"]["individual_email_match_key"] is None  # malformed: counted below
    cases = _by_id(built, "int_service_cases_deduplicated", "cases")
    assert cases["c1"]["individual_phone_e164"] == "+442079460958"
    assert cases["c2"]["individual_phone_e164"] == "+14152345678"
    assert cases["c3"]["individual_phone_e164"] is None


@pytest.mark.slow
def test_locale_numbers_and_value_maps(built):
    orders = _by_id(built, "int_sales_orders_deduplicated", "orders")
    assert orders["o1"]["amount"] == 1299.0 and orders["o2"]["amount"] == 12.5
    assert orders["o3"]["amount"] is None  # "1,299.00" is not a "," decimal number
    assert orders["o1"]["status"] == "paid" and orders["o2"]["status"] == "refunded"
    assert orders["o3"]["status"] is None  # Z is not in the map: null, counted
    assert orders["o4"]["status"] is None  # X maps to null on purpose: not counted
    consent = _by_id(built, "int_contact_point_consents_deduplicated", "consent")
    assert consent["k1"]["status"] == "granted" and consent["k2"]["status"] == "denied"
    assert consent["k3"]["status"] is None


@pytest.mark.slow
def test_values_the_mapping_could_not_use_are_counted_per_source_and_field(built):
    failures = {
        (r["source_name"], r["field"]): r
        for r in _rows(built, "int_parse_failures", "source_name, field", SOURCED)
    }
    assert failures[("people", "individual.birth_date")]["failures"] == 1
    assert failures[("people", "individual.birth_date")]["example_row_numbers"] == [4]
    assert "fits none of the formats" in failures[("people", "individual.birth_date")]["check"]
    assert failures[("orders", "sales_order.status")]["failures"] == 1
    assert failures[("orders", "sales_order.individual_id")]["failures"] == 1
    assert failures[("cases", "service_case.individual_id")]["example_row_numbers"] == [3]
    assert failures[("consent", "contact_point_consent.status")]["failures"] == 1
    # never a value, only the column and what failed
    assert all(
        "maybe" not in r["check"] and "not-an-email" not in r["check"] for r in failures.values()
    )


@pytest.mark.slow
def test_catalog_shows_mapping_failures_in_ingest_data_quality(built):
    from cdp.catalog import connect_catalog, rebuild_catalog

    rebuild_catalog(built)
    con = connect_catalog(built)
    rows = con.execute(
        "select source_name, field, failures from ingest_data_quality "
        "where source_name = 'orders' order by field"
    ).fetchall()
    assert ("orders", "total", 1) in rows  # ingestion: "1,299.00" with decimal ","
    assert ("orders", "sales_order.status", 1) in rows  # mapping: Z not in the map


@pytest.mark.slow
def test_a_login_naming_its_person_by_email_links_the_cookie(built):
    cur = duckdb.connect().execute(
        f"select * from '{built.harmonised_dir / 'int_anonymous_visitors_linked.parquet'}' "
        "where anonymous_id is not null"
    )
    cols = [d[0] for d in cur.description]
    links = {
        (r["anonymous_id"], r["individual_source_name"], r["individual_source_record_id"]): r
        for r in (dict(zip(cols, row, strict=True)) for row in cur.fetchall())
    }
    # two logins with two spellings of one gmail mailbox: one link, two login events
    assert links[("ck-ann", "people", "2")]["login_events"] == 2
    assert links[("ck-ann", "people", "2")]["linked_by"] == "email"
    # an email no person record holds, and a shared role mailbox, link nothing
    assert not [k for k in links if k[0] in ("ck-nobody", "ck-eve")]


@pytest.mark.slow
def test_rejected_emails_are_counted_per_source_and_reason(built):
    rows = (
        duckdb.connect()
        .execute(
            f"select source_name, reason, rejected from "
            f"'{built.harmonised_dir / 'int_email_rejections.parquet'}' "
            "where source_name is not null order by all"
        )
        .fetchall()
    )
    assert ("people", "placeholder", 1) in rows  # test@example.com
    assert ("people", "malformed", 1) in rows  # fay@
