"""Every bad mapping is refused with one line naming the file, the key and the field."""

from __future__ import annotations

import pytest

from cdp.validate import validate_workspace
from cdp.workspace import Workspace

HEAD = "name: people\nlanding: landing/people/*.csv\nformat: csv\nprimary_key: id\n"
CONSENT = "contact_point_consent: {purpose: {value: m}, channel: {value: email}, "

CASES = [
    (
        "  individual: {first_name: first}\n"
        "  sales_order: {order_id: id, individual_id: {column: id, email: email}}\n",
        "objects.sales_order.individual_id: give exactly one of `column`, `email` or `phone`",
    ),
    (
        "  individual: {first_name: first}\n  sales_order: {order_id: id, individual_id: {value: x}}\n",
        "objects.sales_order.individual_id: give exactly one of `column`, `email` or `phone`",
    ),
    (
        "  individual: {first_name: {email: email}}\n",
        "objects.individual.first_name: `email` and `phone` name a person: they are for "
        "`individual_id` only",
    ),
    (
        "  individual: {first_name: first}\n"
        "  sales_order: {order_id: id, individual_id: {email: email, source: people}}\n",
        "objects.sales_order.individual_id: `source` goes with `column`",
    ),
    (
        f"  individual: {{first_name: first}}\n  {CONSENT}status: {{column: opt, map: {{yes: granted}}}}}}\n",
        "objects.contact_point_consent.status.map: the key true was read by YAML as a boolean "
        "(unquoted yes/no/true/false/on/off): quote it",
    ),
    (
        f'  individual: {{first_name: first}}\n  {CONSENT}status: {{column: opt, map: {{"yes": ok}}}}}}\n',
        "objects.contact_point_consent.status: 'ok' is not one of granted, denied, withdrawn",
    ),
    (
        f"  individual: {{first_name: first}}\n  {CONSENT}status: {{value: yes_please}}}}\n",
        "objects.contact_point_consent.status: 'yes_please' is not one of granted, denied, withdrawn",
    ),
    (
        "  individual: {first_name: {column: first, format: '%Y'}}\n",
        "objects.individual.first_name: `format` is for date and timestamp fields; first_name is varchar",
    ),
    (
        "  individual: {birth_date: {column: dob, format: ['%Y-%m-%d', '%Q']}}\n",
        "objects.individual.birth_date: format '%Q': ",
    ),
    (
        "  individual: {birth_date: {column: dob, formats: ['%Y']}}\n",
        "objects.individual.birth_date.formats: unknown key",
    ),
    (
        "  individual: {first_name: first}\n  sales_order: {order_id: id, amount: {column: first, map: {a: b}}}\n",
        "objects.sales_order.amount: `map` is for text fields; amount is double",
    ),
    (
        "  individual: {first_name: first}\n  party_identification:\n    - {type: a, number: id}\n"
        "    - {type: b, number: {column: id, map: {x: y}, value: z}}\n",
        "objects.party_identification[1].number: give exactly one of `column`, `columns` or `value`",
    ),
    (
        "  individual: {first_name: first}\n",
        "columns.first: `decimal` is for integer and double columns, not string",
        "columns: {first: {type: string, decimal: ','}}\n",
    ),
    (
        "  individual: {first_name: first}\n",
        "columns.dob.format: format '%d/%Q': unknown directive '%Q'",
        "columns: {dob: {type: date, format: '%d/%Q'}}\n",
    ),
]


@pytest.mark.parametrize(
    "case", CASES, ids=[c[1].split(":")[0] + f"-{i}" for i, c in enumerate(CASES)]
)
def test_bad_mapping_is_one_line(tmp_path, case):
    objects, expected, columns = (*case, "")[:3]
    ws = Workspace(tmp_path / "ws")
    ws.ensure_dirs()
    (ws.sources_dir / "people.yml").write_text(HEAD + columns + "objects:\n" + objects)
    (line,) = [str(p) for p in validate_workspace(ws).problems]
    assert line.startswith(f"sources/people.yml: {expected}"), line
    assert "\n" not in line
