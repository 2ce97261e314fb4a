"""Match rules, self-limiting blocking and the defaults of tiny workspaces, on real
Splink over real Parquet."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from cdp.errors import CdpError
from cdp.identity.resolve import resolve
from cdp.identity.settings import IdentitySettings
from tests.identity.conftest import rec, write_inputs


def _clusters(ws) -> dict[str, str]:
    t = pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    return {f"{r['source_name']}:{r['source_record_id']}": r["unified_individual_id"] for r in t}


def _linked_by(ws) -> dict[str, str]:
    t = pq.read_table(ws.identity_dir / "unified_link_individual.parquet").to_pylist()
    return {f"{r['source_name']}:{r['source_record_id']}": r["linked_by"] for r in t}


def test_a_newsletter_signup_with_a_first_name_and_an_email_joins_the_crm_record(ws):
    people = [
        rec("crm", "c1", "Maria", "Lopez", "1985-03-02", "m.lopez@mail.com", None, "4 elm st", "10001"),
        rec("news", "n1", "Maria", None, None, "m.lopez@mail.com"),
        # Someone else with that first name and another address: not joined.
        rec("news", "n2", "Maria", None, None, "maria.k@mail.com"),
    ]  # fmt: skip
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1")
    c = _clusters(ws)
    assert c["crm:c1"] == c["news:n1"] != c["news:n2"]
    assert _linked_by(ws)["news:n1"] == "rule:same_email"
    email = next(r for r in result.match_rules if r["rule"] == "same_email")
    assert email["pairs"] == 1 and email["records_linked"] == 2


def test_a_family_mailbox_does_not_merge_the_family(ws):
    people = [
        rec("crm", "p1", "Peter", "Novak", "1970-01-01", "novaks@mail.com", None, "9 elm rd", "10001"),
        rec("crm", "p2", "Jana", "Novak", "1972-03-03", "novaks@mail.com", None, "9 elm rd", "10001"),
        rec("shop", "p3", "Jana", "Novak", "1972-03-03", "novaks@mail.com", None, None, None),
    ]  # fmt: skip
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1")
    c = _clusters(ws)
    assert c["crm:p1"] != c["crm:p2"]  # two first names share the box: not personal
    email = next(r for r in result.match_rules if r["rule"] == "same_email")
    assert email["pairs"] == 0 and email["ignored_values"] == 1
    assert any("email value(s) shared by different people" in w for w in result.warnings)


def test_a_phone_links_only_with_a_compatible_first_name(ws):
    people = [
        rec("crm", "a", "Robert", "Stone", None, None, "+14155550123"),
        rec("shop", "b", "Rob", "Stone", None, None, "+14155550123"),
        rec("service", "c", "Alice", "Stone", None, None, "+14155550123"),
    ]
    write_inputs(ws, people)
    settings = IdentitySettings(
        match_rules=[{"name": "phone_first", "exact": ["phone"], "compatible": ["first_name"]}]
    )
    result = resolve(ws, run_id="r1", settings=settings)
    (rule,) = result.match_rules
    # Robert and Alice make the number a household's, so it links nobody...
    assert rule["pairs"] == 0 and rule["ignored_values"] == 1
    write_inputs(ws, people[:2])
    result = resolve(ws, run_id="r2", settings=settings)
    # ...while held by Robert and Rob alone it is his, and links them.
    c = _clusters(ws)
    assert c["crm:a"] == c["shop:b"] and result.match_rules[0]["pairs"] == 1


def test_values_held_by_many_records_are_ignored_reported_by_count_not_value(ws):
    people = [
        rec("shop", f"s{i}", n, "Doe", f"19{60 + i}-01-01", "orders@shop.com", loyalty="0000")
        for i, n in enumerate(["Al", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus"])
    ]
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1", settings=IdentitySettings(max_identifier_records=5))
    assert len(set(_clusters(ws).values())) == 7
    assert dict(result.ignored_identifiers) == {"email": 1, "loyalty_id": 1}
    text = " ".join(result.warnings)
    assert "orders@shop.com" not in text and "0000" not in text
    assert "ignored 1 loyalty_id value(s) shared by more than 5 records" in text


def test_a_rule_may_name_an_identifier_type_and_a_compatible_birth_date(ws):
    people = [
        rec("crm", "a", "Ann", "Lee", "1980-05-01") | {"national_id": "123"},
        rec("shop", "b", "Anne", "Lee", "1980-05-10") | {"national_id": "123"},
        rec("shop", "c", "Bo", "Li", "1950-01-01") | {"national_id": "999"},
        rec("crm", "d", "Bo", "Li", "1999-12-12") | {"national_id": "999"},
    ]
    write_inputs(ws, people)
    settings = IdentitySettings(
        match_rules=[
            {"name": "same_id", "exact": ["identifier:national_id"], "compatible": ["birth_date"]}
        ]
    )
    result = resolve(ws, run_id="r1", settings=settings)
    c = _clusters(ws)
    assert c["crm:a"] == c["shop:b"]  # one typo apart
    assert c["shop:c"] != c["crm:d"]  # far apart: the rule does not apply
    assert result.match_rules[0]["pairs"] == 1


def test_a_rule_on_two_lists_pairs_records_sharing_any_email_and_any_phone(ws):
    """Each list a rule's keys unnest gives a row per value, and two lists give every
    combination: records pair when some email and some phone of each are equal, in
    whichever position of their lists."""
    people = [
        rec("crm", "a", "Ann", "Lee", None, ["a@x.com", "ann@y.com"], ["+14155550101", "+14155550102"]),
        rec("shop", "b", "Ann", "Lee", None, ["ann@y.com"], ["+14155550199", "+14155550101"]),
        # the email of a and the phone of a, but never both on one record: not paired
        rec("news", "c", "Ann", "Lee", None, ["a@x.com"], ["+14155550177"]),
        rec("news", "d", "Ann", "Lee", None, ["zz@x.com"], ["+14155550102"]),
    ]  # fmt: skip
    write_inputs(ws, people)
    settings = IdentitySettings(
        match_rules=[{"name": "email_and_phone", "exact": ["email", "phone"]}]
    )
    result = resolve(ws, run_id="r1", settings=settings)
    assert _clusters(ws)["crm:a"] == _clusters(ws)["shop:b"]
    linked_by = _linked_by(ws)
    assert linked_by["shop:b"] == "rule:email_and_phone"
    assert not {linked_by["news:c"], linked_by["news:d"]} & {"rule:email_and_phone"}
    assert result.match_rules[0]["pairs"] == 1


def test_match_rule_settings_name_the_bad_key():
    with pytest.raises(CdpError, match=r"identity\.match_rules\.0\.exact.*unknown field 'mail'"):
        IdentitySettings.from_dict({"match_rules": [{"name": "x", "exact": ["mail"]}]})
    with pytest.raises(CdpError, match="match rule names must be unique"):
        IdentitySettings.from_dict(
            {"match_rules": [{"name": "x", "exact": ["email"]}, {"name": "x", "exact": ["phone"]}]}
        )


def test_a_huge_shared_address_is_left_out_of_its_rule_and_the_run_goes_on(ws):
    # 40 residents of one hall of residence, two of them recorded twice.
    people = [
        rec("uni", f"r{i}", f"Name{chr(97 + i % 26)}{chr(97 + i // 26)}", f"Fam{i}", f"19{50 + i}-02-03",
            street="1 college rd", zip="00000")
        for i in range(40)
    ] + [
        rec("gym", "g0", "Nameaa", "Fam0", "1950-02-03", street="1 college rd", zip="00000"),
        rec("gym", "g1", "Nameba", "Fam1", "1951-02-03", street="1 college rd", zip="00000"),
    ]  # fmt: skip
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1", settings=IdentitySettings(max_block_records=10))
    left = {o["rule"]: o for o in result.blocking_left_out}
    assert left["address_line1_key & postal_code"]["records"] == 42
    assert left["address_line1_key & postal_code"]["values"] == 1
    assert "address_line1_key & postal_code" in result.blocking_comparisons
    assert any("left out of this rule" in w and "00000" not in w for w in result.warnings)
    c = _clusters(ws)
    assert c["uni:r0"] == c["gym:g0"] and c["uni:r1"] == c["gym:g1"]  # other rules pair them
    assert len(set(c.values())) == 40


def test_an_exploding_rule_of_the_user_is_refused_naming_it(ws):
    people = [
        rec("crm", f"p{i}", f"N{i}", f"S{i}", street=f"{i} main st", zip="99999") for i in range(40)
    ]
    write_inputs(ws, people)
    settings = IdentitySettings(blocking_rules=[["postal_code"]], max_comparisons_per_rule=100)
    with pytest.raises(CdpError, match=r"blocking rule \[postal_code\] would generate 780 "):
        resolve(ws, run_id="r1", settings=settings)
    # The same rule left to the defaults' self-limiting: tightened, not refused.
    resolve(ws, run_id="r2", settings=IdentitySettings(max_comparisons_per_rule=100))


def test_tiny_workspace_defaults_never_merge_people_who_disagree_on_name_email_phone(ws):
    # Twenty people who share a birth date and a postcode and differ in everything else.
    people = [
        rec("crm", f"o{i}", f"Other{i}", f"Person{i}", "1980-01-01", f"other{i}@mail.com",
            f"+1415555{i:04d}", f"{i + 1} main st", "10001")
        for i in range(20)
    ]  # fmt: skip
    write_inputs(ws, people)
    result = resolve(ws, run_id="r1")
    assert any("too few to train" in w for w in result.warnings)
    assert len(set(_clusters(ws).values())) == 20


def test_an_exploding_rule_reaches_the_user_as_one_line_through_dagster(ws):
    import dagster as dg

    from dagster_project.assets.identity import identity_resolution
    from dagster_project.resources import CdpResource
    from dagster_project.run import require_success, summarise

    people = [rec("crm", f"p{i}", f"N{i}", f"S{i}", zip="99999") for i in range(40)]
    write_inputs(ws, people)
    ws.settings_file.write_text(
        "identity:\n  blocking_rules: [[postal_code]]\n  max_comparisons_per_rule: 100\n"
    )
    result = dg.materialize(
        [identity_resolution],
        resources={"cdp": CdpResource(workspace_dir=str(ws.root))},
        raise_on_error=False,
    )
    with pytest.raises(CdpError) as err:
        require_success(summarise(result))
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("identity_resolution: blocking rule [postal_code] would generate 780")
    assert "Error occurred while executing" not in line


def test_rules_found_within_a_part_are_those_of_all_records_kept_for_the_part(ws):
    """An incremental run looks for rule pairs only inside the part it resolves again,
    but counts how many records hold a value over all of them: the pairs, strong
    identifiers and shared contacts are what a search over everything keeps."""
    import numpy as np

    from cdp.identity.match_rules import all_rule_pairs
    from cdp.identity.prepare import build_records, connect_inputs
    from cdp.identity.resolve import _part_of
    from tests.identity.conftest import PEOPLE

    people = [
        *PEOPLE,
        rec("news", "s2", "Eva", None, None, "novaks@x.com"),
        rec("shop", "a6", "Rob", "Stone", None, "rstone@x.com", None, None, None, "L77"),
    ]
    write_inputs(ws, people)
    records = build_records(connect_inputs(ws))
    settings = IdentitySettings(max_identifier_records=3)  # the Novak mailbox is over it
    uids = records["unique_id"].to_pylist()
    part = np.array(
        sorted(uids.index(u) for u in ("crm:c2", "shop:a3", "news:s2", "crm:c4", "shop:a6"))
    )
    whole = _part_of(all_rule_pairs(records, settings), part, len(uids))
    within = _part_of(all_rule_pairs(records, settings, within=part), part, len(uids))
    for a, b in zip(whole[0], within[0], strict=True):
        assert (a.rule, a.lo.tolist(), a.hi.tolist()) == (b.rule, b.lo.tolist(), b.hi.tolist())
        assert a.ignored == b.ignored
    assert whole[1] == within[1] and whole[1]  # the Stones' loyalty id
    assert whole[2] == within[2] and whole[2]["phone"]  # the Novaks' landline
    assert sum(len(rp.lo) for rp in within[0]) > 0
    assert any(rp.ignored for rp in within[0])  # the mailbox, held by four records of three
