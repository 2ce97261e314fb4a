"""One workspace for the harmonise tests, built once: ingestion and a real dbt build.

`contacts` exercises normalisation (test_harmonise.py); the other sources exercise the
mapping language (test_mapping.py).
"""

from __future__ import annotations

import pytest

from cdp.config.sources import load_sources
from cdp.harmonise.dbt_env import prepare, run_dbt
from cdp.ingest import ingest_source
from cdp.workspace import Workspace

# Normalisation: names, dates, emails, phones, addresses.
SOURCE = """\
name: contacts
landing: landing/contacts/*.csv
format: csv
primary_key: id
updated_at: updated
columns: {updated: timestamp}
objects:
  individual: {first_name: first, last_name: last, birth_date: {column: dob, format: "%Y-%m-%d"}}
  contact_point_email: {email_address: email}
  contact_point_phone: {phone_number: phone}
  contact_point_address: {address_line1: street, postal_code: zip}
"""

ROWS = """\
id,first,last,dob,email,phone,street,zip,updated
1,  José ,García Jr.,1980-02-29,John.Smith+news@GMail.com,(415) 234-5678,12 Oak Street Apartment 4,94110-1234,2024-01-01 00:00:00
2,Dr. Łukasz,Nowak,2023-02-30,johnsmith@googlemail.com,+44 20 7946 0958,5 High Road,SW1A 1AA,2024-01-01 00:00:00
3,Zoë,O'Brien,,bad@,0049 30 1234567,"7 Elm Ave, #3", 10001 ,2024-01-01 00:00:00
3,Zoë,O'Brien,1990-01-01,zoe@x.com,12,7 Elm Avenue Apt 3,10001,2025-01-01 00:00:00
"""


# The mapping language: full names, format lists, per-row phone regions, ...
PEOPLE = """\
name: people
landing: landing/people/*.csv
format: csv
primary_key: id
pii: [name, first, email, phone, dob]
objects:
  individual:
    full_name: name
    first_name: first
    birth_date: {column: dob, format: ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]}
  contact_point_email: {email_address: email}
  contact_point_phone: {phone_number: phone, country: country}
  contact_point_address: {address_line1: {columns: [house, street]}, country: country}
"""

PEOPLE_ROWS = """\
id,name,first,dob,email,phone,country,house,street
1,Dr. Juan Q. Xavier de la Vega III,,1980-02-29,juan@shop.test,020 7946 0958,GB,12,High Road
2,"Lee, Ann",Annie,03/25/1952,Ann.Lee+x@gmail.com,(415) 234-5678,US,,Oak Street
3,Bob Smith,,16.11.1943,bob@x.org,,uk,7,
4,Cy Young,,20040312,cy@x.org,,,,
5,Dee Noe,,,test@example.com,,,,
6,Eve Roe,,,info@eve.org,,,,
7,Fay Poe,,,fay@,,,,
"""

ORDERS = """\
name: orders
landing: landing/orders/*.csv
format: csv
primary_key: order_id
pii: [customer_email, customer_phone]
columns:
  total: {type: double, decimal: ","}
objects:
  sales_order:
    order_id: order_id
    individual_id: {email: customer_email}
    amount: total
    status: {column: state, map: {"P": paid, "R": refunded, "X": null}}
"""

ORDER_ROWS = """\
order_id,customer_email,total,state
o1,ANN.LEE@googlemail.com,"1.299,00",p
o2,not-an-email,"12,50",R
o3,juan@shop.test,"1,299.00",Z
o4,,7,X
"""

CASES = """\
name: cases
landing: landing/cases/*.csv
format: csv
primary_key: case_id
pii: [phone]
objects:
  service_case: {case_id: case_id, individual_id: {phone: phone}}
"""

CASE_ROWS = """\
case_id,phone
c1,+44 20 7946 0958
c2,(415) 234-5678
c3,12
"""

CONSENT = """\
name: consent
landing: landing/consent/*.csv
format: csv
primary_key: id
pii: [email]
objects:
  contact_point_consent:
    email_address: email
    purpose: {value: marketing}
    channel: {value: email}
    status: {column: opt_in, map: {"true": granted, "false": denied}}
"""

CONSENT_ROWS = """\
id,email,opt_in
k1,juan@shop.test,true
k2,bob@x.org,FALSE
k3,cy@x.org,maybe
"""


LOGINS = """\
name: logins
landing: landing/logins/*.jsonl
format: jsonl
primary_key: login_id
pii: [email]
objects:
  engagement_web:
    anonymous_id: cookie
    individual_id: {email: email}
    event_type: {value: login}
"""

LOGIN_ROWS = """\
{"login_id": "L1", "cookie": "ck-ann", "email": "annlee@gmail.com"}
{"login_id": "L2", "cookie": "ck-ann", "email": "ann.lee+shop@googlemail.com"}
{"login_id": "L3", "cookie": "ck-nobody", "email": "nobody@nowhere.org"}
{"login_id": "L4", "cookie": "ck-eve", "email": "info@eve.org"}
"""


@pytest.fixture(scope="package")
def built(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("harm") / "ws")
    ws.ensure_dirs()
    for name, yml, rows in (
        ("contacts", SOURCE, ROWS),
        ("people", PEOPLE, PEOPLE_ROWS),
        ("orders", ORDERS, ORDER_ROWS),
        ("cases", CASES, CASE_ROWS),
        ("consent", CONSENT, CONSENT_ROWS),
        ("logins", LOGINS, LOGIN_ROWS),
    ):
        ext = "jsonl" if "format: jsonl" in yml else "csv"
        (ws.sources_dir / f"{name}.yml").write_text(yml)
        (ws.landing_dir / name).mkdir(parents=True)
        (ws.landing_dir / name / f"{name}.{ext}").write_text(rows)
    for spec in load_sources(ws.sources_dir):
        ingest_source(ws, spec)
    prepare(ws)
    run_dbt(ws, ["build", "--select", "tag:staging tag:intermediate"])
    return ws
