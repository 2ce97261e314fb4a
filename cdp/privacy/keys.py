"""Which values of a landed row say who it is about, as declared in the source YAML.

A row is about a person when it holds one of their keys:
- `record:<source>:<id>`: their person record (the primary key of a person source, or a
  column mapped to `individual_id` of another object, pointing at that source);
- `email:<address>` (lower case) and `phone:<E.164>`: a contact point, wherever mapped;
- `cookie:<anonymous id>`: a web visitor linked to them;
- `order:<order id>`: one of their orders (an order line names only its order).

Erasure (cdp.privacy.forget) removes the rows holding the person's keys from landing
files and raw loads; the suppression list (cdp.privacy.suppression) keeps salted hashes
of the same keys so that an old extract landed again does not bring the person back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from cdp.config.sources import SourceSpec
from cdp.harmonise.normalise import phone_e164

EMAIL_FIELDS = {
    "contact_point_email": "email_address",
    "contact_point_consent": "email_address",
    "engagement_email": "email_address",
}
PHONE_FIELDS = {"contact_point_phone": "phone_number", "contact_point_consent": "phone_number"}


@dataclass(frozen=True)
class KeyColumn:
    kind: str  # record | email | phone | cookie | order
    columns: tuple[str, ...]  # several for a composite primary key, joined by "|"
    source: str | None = None  # for `record`: the person source the id belongs to
    region_column: str | None = None  # for `phone`: the row's country, if mapped


def key_columns(spec: SourceSpec) -> list[KeyColumn]:
    out: list[KeyColumn] = []
    if spec.is_person_source:
        out.append(KeyColumn("record", tuple(spec.primary_key), spec.name))
    for obj, mappings in spec.objects.items():
        for m in mappings:
            ref = m.get("individual_id")
            if ref is not None and ref.column:
                out.append(KeyColumn("record", (ref.column,), ref.source or spec.name))
            for kind, fields in (("email", EMAIL_FIELDS), ("phone", PHONE_FIELDS)):
                fm = m.get(fields.get(obj, ""))
                if fm is not None and fm.column:
                    region = m.get("country") if obj == "contact_point_phone" else None
                    out.append(
                        KeyColumn(
                            kind, (fm.column,), region_column=region.column if region else None
                        )
                    )
            for kind, attr in (("email", "email"), ("phone", "phone")):
                column = getattr(ref, attr, None) if ref is not None else None
                if column:
                    out.append(KeyColumn(kind, (column,)))
            if obj == "engagement_web" and m.get("anonymous_id") and m["anonymous_id"].column:
                out.append(KeyColumn("cookie", (m["anonymous_id"].column,)))
            order = m.get("order_id") if obj in ("sales_order", "sales_order_line") else None
            if order is not None and order.column:
                out.append(KeyColumn("order", (order.column,)))
    return list(dict.fromkeys(out))


def _text(table: pa.Table, column: str) -> list[str | None]:
    if column not in table.column_names:
        return [None] * table.num_rows
    values = table.column(column)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    return values.to_pylist()


def row_keys(table: pa.Table, spec: SourceSpec, default_region: str) -> list[list[str]]:
    """Every key each row holds, in the `<kind>:<value>` form above."""
    keys: list[list[str]] = [[] for _ in range(table.num_rows)]
    for kc in key_columns(spec):
        columns = [_text(table, c) for c in kc.columns]
        regions = _text(table, kc.region_column) if kc.region_column else None
        for i, parts in enumerate(zip(*columns, strict=True)):
            if any(p is None or not str(p).strip() for p in parts):
                continue
            value = "|".join(str(p).strip() for p in parts)
            key = _key(kc, value, (regions[i] if regions else None) or default_region)
            if key:
                keys[i].append(key)
    return keys


def _key(kc: KeyColumn, value: str, region: str) -> str | None:
    if kc.kind == "record":
        return f"record:{kc.source}:{value}"
    if kc.kind == "email":
        return f"email:{value.lower()}"
    if kc.kind == "phone":
        e164 = phone_e164(value, region.strip().upper() or "US")
        return f"phone:{e164}" if e164 else None
    return f"{kc.kind}:{value}"


def rows_holding(
    table: pa.Table, spec: SourceSpec, default_region: str, wanted: set[str]
) -> pa.Array:
    """A boolean mask: the rows holding any of the `wanted` keys."""
    if not wanted or not table.num_rows:
        return pa.array([False] * table.num_rows)
    return pa.array(
        [any(k in wanted for k in ks) for ks in row_keys(table, spec, default_region)],
        pa.bool_(),
    )


def count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)
