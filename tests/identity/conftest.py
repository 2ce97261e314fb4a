"""Hand-made harmonised inputs for identity resolution: small, with known answers."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace


def write_inputs(ws: Workspace, records: list[dict], logins: list[tuple[str, str]] = ()) -> None:
    """records: source, id, first, last, dob, email, phone, street, zip, loyalty (any may be None)."""
    ws.ensure_dirs()
    h = ws.harmonised_dir

    def col(key):
        return [r.get(key) for r in records]

    keys = {"source_name": col("source"), "source_record_id": col("id")}
    fold = [(r.get("first") or "").lower() or None for r in records]
    write_parquet(
        h / "int_individuals_deduplicated.parquet",
        pa.table(
            {
                **keys,
                "first_name": col("first"),
                "last_name": col("last"),
                "first_name_key": fold,
                "last_name_key": [(r.get("last") or "").lower() or None for r in records],
                "birth_date": pa.array(
                    [date.fromisoformat(d) if d else None for d in col("dob")], pa.date32()
                ),
                "updated_ts": pa.array([None] * len(records), pa.timestamp("us")),
            }
        ),
    )

    def contact(name, value_key, columns):
        rows = [r for r in records if r.get(value_key)]
        t = {
            "source_name": [r["source"] for r in rows],
            "source_record_id": [r["id"] for r in rows],
            "ordinal": [1] * len(rows),
        }
        t.update(columns(rows))
        write_parquet(h / name, pa.table(t))

    contact(
        "int_contact_point_emails_deduplicated.parquet",
        "email",
        lambda rows: {
            "email_address": [r["email"] for r in rows],
            "email_match_key": [r["email"] for r in rows],
            "is_valid": [True] * len(rows),
        },
    )
    contact(
        "int_contact_point_phones_deduplicated.parquet",
        "phone",
        lambda rows: {"phone_e164": [r["phone"] for r in rows], "is_valid": [True] * len(rows)},
    )
    contact(
        "int_contact_point_addresses_deduplicated.parquet",
        "street",
        lambda rows: {
            "address_line1_key": [r["street"] for r in rows],
            "postal_code_key": [r.get("zip") for r in rows],
            "city_key": [None] * len(rows),
        },
    )
    ids = [
        (r["source"], r["id"], t, r[key])
        for r in records
        for key, t in (("loyalty", "loyalty_id"), ("national_id", "national_id"))
        if r.get(key)
    ]
    write_parquet(
        h / "int_party_identifications_deduplicated.parquet",
        pa.table(
            {
                name: pa.array([row[i] for row in ids], pa.string())
                for i, name in enumerate(
                    (
                        "source_name",
                        "source_record_id",
                        "identification_type",
                        "identification_number",
                    )
                )
            }
        ),
    )
    write_parquet(
        h / "int_anonymous_visitors_linked.parquet",
        pa.table(
            {
                "anonymous_id": pa.array([c for c, _ in logins], pa.string()),
                "individual_source_name": pa.array(
                    [a.split(":")[0] for _, a in logins], pa.string()
                ),
                "individual_source_record_id": pa.array(
                    [a.split(":")[1] for _, a in logins], pa.string()
                ),
                "login_events": pa.array([1] * len(logins), pa.int64()),
                "last_login_ts": pa.array([None] * len(logins), pa.timestamp("us")),
            }
        ),
    )


def rec(
    source, rid, first, last, dob=None, email=None, phone=None, street=None, zip=None, loyalty=None
):
    return {
        "source": source,
        "id": rid,
        "first": first,
        "last": last,
        "dob": dob,
        "email": email,
        "phone": phone,
        "street": street,
        "zip": zip,
        "loyalty": loyalty,
    }


# Ann Lee in three systems; the Novak household (same street, surname, family email);
# Bob/Robert Stone with one loyalty id and different emails.
PEOPLE = [
    rec(
        "crm",
        "c1",
        "Ann",
        "Lee",
        "1980-05-01",
        "ann.lee1@x.com",
        "+14155550101",
        "1 oak st",
        "94110",
    ),
    rec("shop", "a1", "Ann", "Lee", "1980-05-01", "ann.lee1@x.com", None, "1 oak st", "94110"),
    rec("news", "s1", "Ann", None, None, "ann.lee1@x.com", None, None, None),
    rec(
        "crm",
        "c2",
        "Peter",
        "Novak",
        "1970-01-01",
        "novaks@x.com",
        "+14155550199",
        "9 elm rd",
        "10001",
    ),
    rec(
        "crm",
        "c3",
        "Jana",
        "Novak",
        "1972-03-03",
        "novaks@x.com",
        "+14155550199",
        "9 elm rd",
        "10001",
    ),
    rec(
        "shop",
        "a3",
        "Eva",
        "Novak",
        "2001-07-07",
        "novaks@x.com",
        "+14155550199",
        "9 elm rd",
        "10001",
    ),
    rec(
        "crm",
        "c4",
        "Robert",
        "Stone",
        "1990-09-09",
        "rstone@x.com",
        None,
        "5 pine ave",
        "60601",
        "L77",
    ),
    rec("shop", "a4", "Bob", "Stone", None, "bobby.s@y.com", None, "5 pine ave", "60601", "L77"),
]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")
