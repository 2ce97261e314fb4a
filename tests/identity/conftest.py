"""Hand-made identity inputs: small, with known answers.

`write_inputs` writes what the dbt model int_person_records_prepared would make of the
records (the same folding, nickname lists and house numbers), so the identity stage runs
on real Parquet without a dbt run.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from cdp.harmonise.normalise import canonical_first_name, fold, name_variants
from cdp.io.atomic import write_parquet
from cdp.workspace import Workspace

IDENTIFIERS = pa.list_(pa.struct([("type", pa.string()), ("value", pa.string())]))


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def write_inputs(ws: Workspace, records: list[dict], logins: list[tuple[str, str]] = ()) -> None:
    """records: source, id, first, last, dob, email, phone, street, zip, loyalty,
    national_id (any may be None; email and phone may be lists)."""
    ws.ensure_dirs()
    held: dict[str, int] = {}
    for r in records:
        for v in {*_as_list(r.get("email")), *_as_list(r.get("phone"))}:
            held[v] = held.get(v, 0) + 1

    def personal(values: list) -> str | None:
        # As the dbt model: the first value held by at most five records.
        return next((v for v in values if held[v] <= 5), None)

    rows = []
    for r in records:
        first, last = fold(r.get("first")), fold(r.get("last"))
        emails, phones = _as_list(r.get("email")), _as_list(r.get("phone"))
        street = r.get("street")
        house = re.match(r"^(\d+)", street) if street else None
        ids = [{"type": "loyalty_id", "value": r["loyalty"]}] if r.get("loyalty") else []
        ids += [{"type": "national_id", "value": r["national_id"]}] if r.get("national_id") else []
        rows.append(
            {
                "unique_id": f"{r['source']}:{r['id']}",
                "source_name": r["source"],
                "source_record_id": r["id"],
                "first_name": r.get("first"),
                "last_name": r.get("last"),
                "first_name_key": first,
                "first_name_canon": canonical_first_name(first),
                "first_name_variants": list(name_variants(first)) if first else None,
                "last_name_key": last,
                "birth_date": r.get("dob"),
                "email_key": personal(emails),
                "phone": personal(phones),
                "address_line1_key": street,
                "house_number": house.group(1) if house else None,
                "postal_code": r.get("zip"),
                "city_key": None,
                "national_id": r.get("national_id"),
                "emails": sorted(emails) or None,
                "phones": sorted(phones) or None,
                "identifiers": ids or None,
                "updated_ts": None,
            }
        )
    types = {
        "first_name_variants": pa.list_(pa.string()),
        "emails": pa.list_(pa.string()),
        "phones": pa.list_(pa.string()),
        "identifiers": IDENTIFIERS,
        "updated_ts": pa.timestamp("us"),
    }
    names = list(rows[0]) if rows else []
    schema = pa.schema([(k, types.get(k, pa.string())) for k in names])
    write_parquet(
        ws.harmonised_dir / "int_person_records_prepared.parquet",
        pa.Table.from_pylist(rows, schema=schema),
    )
    write_parquet(
        ws.harmonised_dir / "int_anonymous_visitors_linked.parquet",
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
    rec("crm", "c1", "Ann", "Lee", "1980-05-01", "ann.lee1@x.com", "+14155550101", "1 oak st", "94110"),
    rec("shop", "a1", "Ann", "Lee", "1980-05-01", "ann.lee1@x.com", None, "1 oak st", "94110"),
    rec("news", "s1", "Ann", None, None, "ann.lee1@x.com", None, None, None),
    rec("crm", "c2", "Peter", "Novak", "1970-01-01", "novaks@x.com", "+14155550199", "9 elm rd", "10001"),
    rec("crm", "c3", "Jana", "Novak", "1972-03-03", "novaks@x.com", "+14155550199", "9 elm rd", "10001"),
    rec("shop", "a3", "Eva", "Novak", "2001-07-07", "novaks@x.com", "+14155550199", "9 elm rd", "10001"),
    rec("crm", "c4", "Robert", "Stone", "1990-09-09", "rstone@x.com", None, "5 pine ave", "60601", "L77"),
    rec("shop", "a4", "Bob", "Stone", None, "bobby.s@y.com", None, "5 pine ave", "60601", "L77"),
]  # fmt: skip


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")
