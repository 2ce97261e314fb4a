"""An increment of new people, edited and shared emails, a contact retyped as another
person, consents moved to other emails, two people merged by a new contact, activity
known by email only and logins on old cookies: its marts equal a full build's of the same
lake, though it attributes activity, decides consent and counts contact keys again only
where they can have changed (cdp/harmonise/increments.py)."""

from __future__ import annotations

import json

import duckdb
import pytest

from cdp.harmonise.increments import ATTRIBUTED, MARTS
from cdp.io import lake, parts
from cdp.workspace import Workspace
from tests.crash import _marts
from tests.data_tests import failed_whole, failure_on_increment, with_row
from tests.in_process import cdp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.takes(120),
    pytest.mark.usefixtures("warm_dbt_commands"),
]


def _crm_edits(root) -> None:
    """A CRM delta written by hand: ten contacts again, later. Five take the email of
    another contact (that email is then held by two people: activity naming it is no
    longer either's), five get an address of their own (activity naming their old email
    belongs to no one any more, or to its other holder). And one contact retyped as
    another person."""
    landed = str(root / "landing" / "crm_contacts" / "crm_contacts_0000[1-9].csv")
    cases = str(root / "landing" / "service_cases" / "*.csv")
    path = root / "landing" / "crm_contacts" / "crm_contacts_09999.csv"
    duckdb.execute(
        f"""
        copy (
            with contacts as (
                select *, row_number() over (order by contact_id) as n
                from read_csv('{landed}', header = true, all_varchar = true, quote = '"')
                where email <> ''
            )
            select c.* exclude (n) replace (
                case when c.n <= 5 then other.email
                    else 'moved.' || c.contact_id || '@example.org' end as email,
                '2026-11-01 09:00:00' as modified_at)
            from contacts c join contacts other on other.n = c.n + 100
            where c.n <= 10
            union all
            -- the contact of the first service case, retyped with another contact's
            -- details: its record moves to that person, and its cases with it
            select q.* exclude (n) replace (
                r.first_name as first_name, r.last_name as last_name, r.dob as dob,
                r.gender as gender, r.email as email, r.phone as phone, r.street as street,
                r.city as city, r.zip as zip, '2026-11-01 09:00:00' as modified_at)
            from contacts q join contacts r on r.n = 150
            where q.contact_id = (
                select min(contact_id) from read_csv('{cases}', header = true, all_varchar = true,
                    quote = '"') where contact_id in (select contact_id from contacts where n > 10)
            )
        ) to '{path}' (header, quote '"', force_quote *)
        """
    )


def _consent_edits(root) -> list[tuple]:
    """A consent delta written by hand. Five consent records that decide someone's consent
    now are captured again, later, for another customer's email and without their phone:
    the first holder loses them, the other gains them. And a new withdrawal for an email
    that already has consent records. Returns the rows the five decided before (person,
    purpose, channel, record)."""
    marts = root / "lake" / "marts"
    landed = str(root / "landing" / "consent_records" / "*.csv")
    read = f"read_csv('{landed}', header = true, all_varchar = true, quote = '\"')"
    decided = duckdb.execute(
        f"""
        with deciding as (
            select decided_by_record
            from read_parquet('{marts}/individual_consent.parquet')
            where decided_by_source = 'consent_records'
            group by 1 having count(*) = 1
        )
        select c.consent_id
        from {read} c join deciding d on d.decided_by_record = c.consent_id
        where c.email <> '' order by 1 limit 5
        """
    ).fetchall()
    assert len(decided) == 5
    ids = ", ".join(f"'{consent_id}'" for (consent_id,) in decided)
    path = root / "landing" / "consent_records" / "consent_records_09999.csv"
    duckdb.execute(
        f"""
        copy (
            with emails as (
                select email, row_number() over (order by email) as n
                from (select distinct email from {read} where email <> '')
            ),
            moved as (
                select c.*, row_number() over (order by c.consent_id) as n
                from {read} c where c.consent_id in ({ids})
            )
            select m.* exclude (n) replace (
                e.email as email, '' as phone, '2026-11-02 09:00:00' as captured_at)
            from moved m join emails e on e.n = m.n * 7 + 40
            union all
            select 'CNEW1', email, '', 'marketing', 'email', 'withdrawn', '2026-11-02 10:00:00'
            from emails where n = 3
        ) to '{path}' (header, quote '"', force_quote *)
        """
    )
    return duckdb.execute(
        f"select unified_individual_id, purpose, channel, decided_by_record "
        f"from read_parquet('{marts}/individual_consent.parquet') "
        f"where decided_by_record in ({ids}) order by all"
    ).fetchall()


CRM_HEADER = (
    "contact_id,salutation,first_name,last_name,dob,gender,email,phone,street,city,zip,"
    "state,country,loyalty_no,created_at,modified_at\n"
)


def _bridged(root, stage: str) -> None:
    """Two people who become one, by hand. First Zed Alpha (two records sharing an email)
    and Zed Beta (one record, a phone of his own). Then a new contact with Zed Alpha's
    email and Zed Beta's phone: the match rules join the two, and Zed Beta's record takes
    the id of the larger cluster, though no row of it changed, nor its email."""
    crm = root / "landing" / "crm_contacts"
    if stage == "before":
        rows = [
            "C0BRIDGE1,,Zed,Alpha,1970-01-01,M,zed.alpha.bridge@gmail.com,,,Dayton,45402,OH,US,,"
            "2024-01-01 10:00:00,2024-01-01 10:00:00",
            "C0BRIDGE2,,Zed,Alpha,1970-01-01,M,zed.alpha.bridge@gmail.com,,,Dayton,45402,OH,US,,"
            "2024-01-01 10:00:00,2024-01-01 10:00:00",
            "C0BRIDGE3,,Zed,Beta,1970-01-01,M,zed.beta.bridge@gmail.com,001 614 870 9912,,"
            "Tucson,85701,AZ,US,,2024-01-01 10:00:00,2024-01-01 10:00:00",
        ]
        (crm / "crm_contacts_08000.csv").write_text(CRM_HEADER + "\n".join(rows) + "\n")
    else:
        row = (
            "C0BRIDGE4,,Zed,,,,zed.alpha.bridge@gmail.com,001 614 870 9912,,,,,,,"
            "2026-11-01 09:00:00,2026-11-01 09:00:00"
        )
        (crm / "crm_contacts_09998.csv").write_text(CRM_HEADER + row + "\n")


def _bridged_ids(root) -> dict[str, str]:
    links = root / "lake" / "identity" / "unified_link_individual.parquet"
    return dict(
        duckdb.execute(
            f"select source_record_id, unified_individual_id from read_parquet('{links}') "
            "where source_record_id like 'C0BRIDGE%'"
        ).fetchall()
    )


# A help desk that knows its requesters by email only, declared and landed by hand.
HELPDESK = """\
name: helpdesk
landing: landing/helpdesk/*.csv
format: csv
primary_key: ticket_id
pii: [requester]
objects:
  service_case:
    case_id: ticket_id
    individual_id: {email: requester}
    status: status
"""


def _helpdesk(root) -> None:
    """One ticket for each email of the first 120 CRM contacts that have one: among
    them the emails the CRM edits below move and share."""
    (root / "sources" / "helpdesk.yml").write_text(HELPDESK)
    (root / "landing" / "helpdesk").mkdir()
    landed = str(root / "landing" / "crm_contacts" / "crm_contacts_0000[1-9].csv")
    path = root / "landing" / "helpdesk" / "tickets.csv"
    duckdb.execute(
        f"""
        copy (
            select 'T' || contact_id as ticket_id, email as requester, 'open' as status
            from read_csv('{landed}', header = true, all_varchar = true, quote = '"')
            where email <> '' order by contact_id limit 120
        ) to '{path}' (header, quote '"', force_quote *)
        """
    )


def _login_on_old_cookies(root) -> None:
    """A new web load: a login, by an existing account, on each of five cookies that
    until now only browsed anonymously. Their earlier page views (not in this load) then
    belong to that account's person."""
    web = root / "landing" / "web_events"
    rows = duckdb.execute(
        f"""
        with events as (select * from read_json('{web}/*.jsonl', format = 'newline_delimited')),
        anonymous as (
            select anonymous_id from events group by 1
            having count(account_id) = 0 order by 1 limit 5
        ),
        accounts as (
            select distinct account_id from events where account_id is not null
            order by 1 limit 5
        )
        select a.anonymous_id, b.account_id
        from (select *, row_number() over (order by anonymous_id) as n from anonymous) a
        join (select *, row_number() over (order by account_id) as n from accounts) b using (n)
        """
    ).fetchall()
    lines = [
        json.dumps(
            {
                "event_id": f"ELOGIN{n}",
                "anonymous_id": cookie,
                "account_id": account,
                "session_id": f"WLOGIN{n}",
                "event_type": "login",
                "page": "/account",
                "ts": "2024-01-01 10:00:00",
            }
        )
        for n, (cookie, account) in enumerate(rows)
    ]
    assert len(lines) == 5
    (web / "web_events_09999.jsonl").write_text("\n".join(lines) + "\n")


def test_an_increment_of_new_people_and_edited_emails_equals_a_full_build(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    cdp("init", str(root))
    cdp("generate", "--customers", "300", "-w", str(root))
    _helpdesk(root)
    _bridged(root, "before")
    cdp("run", "--quiet", "-w", str(root))
    ids = _bridged_ids(root)
    assert ids["C0BRIDGE1"] == ids["C0BRIDGE2"] != ids["C0BRIDGE3"]
    cases = root / "lake" / "marts" / "int_service_cases_attributed.parquet"
    by_email = (
        f"select attributed_by, count(*) from {lake.scan(cases)} "
        "where source_name = 'helpdesk' group by 1"
    )
    assert dict(duckdb.execute(by_email).fetchall())["email"] >= 100
    seen = root / "lake" / "marts" / "_seen"
    assert sorted(p.name for p in seen.iterdir()) == [
        "int_contact_keys_resolved.parquet",
        "int_contact_point_consents_deduplicated.parquet",
        "int_contact_point_emails_deduplicated.parquet",
        "int_contact_point_phones_deduplicated.parquet",
        "unified_link_individual.parquet",
    ]
    cdp("generate", "--append", "--customers", "20", "-w", str(root))
    _crm_edits(root)
    _login_on_old_cookies(root)
    consent_moved = _consent_edits(root)
    _bridged(root, "after")
    cdp("run", "--quiet", "-w", str(root))
    # Zed Beta's record joined Zed Alpha under his id, and his email with it
    assert set(_bridged_ids(root).values()) == {ids["C0BRIDGE1"]}
    zed_beta = duckdb.execute(
        f"select unified_individual_id from read_parquet('{root}/lake/marts/"
        "int_contact_keys_resolved.parquet') where key_value = 'zedbetabridge@gmail.com'"
    ).fetchall()
    assert zed_beta == [(ids["C0BRIDGE1"],)]
    marts = root / "lake" / "marts"

    def count(name: str, where: str = "true") -> int:
        return duckdb.execute(
            f"select count(*) from read_parquet('{marts / name}.parquet') where {where}"
        ).fetchone()[0]

    # The marts' build was an increment, and found what changed: new people's records
    # and cookies, and the emails the edits moved.
    assert count("int_unified_individuals_changed", "reason = 'full'") == 0
    assert count("int_links_changed", "record_kind = 'person'") > 0
    assert count("int_links_changed", "record_kind = 'anonymous_visitor'") > 0
    assert count("int_contact_keys_changed", "key_type = 'email'") >= 5
    # tickets untouched by the increment, whose email is now two people's
    assert dict(duckdb.execute(by_email).fetchall())["ambiguous"] >= 5
    # The consents moved to other emails no longer decide for their first holders, and
    # the new withdrawal decides for the holder of its email.
    assert len(consent_moved) == 5
    for person, purpose, channel, consent_id in consent_moved:
        row = duckdb.execute(
            f"select decided_by_record from read_parquet('{marts}/individual_consent.parquet') "
            "where unified_individual_id = ? and purpose = ? and channel = ?",
            [person, purpose, channel],
        ).fetchall()
        assert row != [(consent_id,)], consent_id
    assert count("individual_consent", "decided_by_record = 'CNEW1' and not is_granted") >= 1
    # The attributed tables took a new part of what changed: the new web events, and the
    # earlier page views of the cookies that logged in, now their person's.
    webs = marts / "int_engagement_webs_attributed.parquet"
    earlier, newest = parts.part_files(webs)
    total, written = (
        duckdb.execute(f"select count(*) from {lake.scan(p)}").fetchone()[0] for p in (webs, newest)
    )
    assert 0 < written < total / 10
    relinked = duckdb.execute(
        f"select count(*) from read_parquet('{newest}') where attributed_by = 'anonymous_visitor'"
        f" and anonymous_id in (select anonymous_id from read_parquet('{newest}')"
        " where source_record_id like 'ELOGIN%') and source_record_id not like 'ELOGIN%'"
    ).fetchone()[0]
    assert relinked > 0
    # ...and those rows left the earlier part
    assert (
        duckdb.execute(
            f"select count(*) from read_parquet('{earlier}') semi join read_parquet('{newest}') "
            "using (source_name, source_record_id)"
        ).fetchone()[0]
        == 0
    )
    increment = _marts(root)
    _tests_read_the_newest_part(Workspace(root), monkeypatch, earlier, newest)

    # The same lake built whole.
    cdp("run", "--quiet", "--full-refresh", "-w", str(root))
    assert count("int_links_changed", "record_kind is not null") == 0  # nothing to compare
    rebuilt = _marts(root)
    assert webs.is_file()  # built whole: one file again
    assert increment.keys() == rebuilt.keys()
    changed_sets = {"int_links_changed.parquet", "int_contact_keys_changed.parquet"}
    for name in sorted(set(rebuilt) - changed_sets):
        assert increment[name] == rebuilt[name], name
    assert set(MARTS.kept) >= set(ATTRIBUTED)


def _tests_read_the_newest_part(ws, monkeypatch, earlier, newest) -> None:
    """On a marts increment, the data tests of an attributed table read the part the build
    wrote, and every row sharing a key with it (dbt_models/macros/increment_tests.sql): a
    row repeated among the copies is not read again (a whole test finds it), and a new row
    repeating an old key is. The parts are put back as they were."""
    model = "int_engagement_webs_attributed"
    pristine = {path: path.read_bytes() for path in (earlier, newest)}
    try:
        with_row(earlier, "select * from '{f}' limit 1")
        assert failure_on_increment(ws, monkeypatch, MARTS, model) is None
        assert "unique(source_name, source_record_id)" in failed_whole(ws, model)
        earlier.write_bytes(pristine[earlier])
        with_row(newest, f"select * from read_parquet('{earlier}') limit 1")
        assert "unique(source_name, source_record_id)" in failure_on_increment(
            ws, monkeypatch, MARTS, model
        )
    finally:
        for path, content in pristine.items():
            path.write_bytes(content)
