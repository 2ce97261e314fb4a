"""The canonical customer data model: the objects, and the fields a source may map to them.

This is the single place the vocabulary is defined. Source YAML mappings are
validated against it, and the dbt staging code generator reads it to cast each
field and to fill unmapped fields with typed nulls.

Types are DuckDB type names. `individual_id` on a non-person object holds the
`source_record_id` of the person record it belongs to (in `individual_source`,
by default the same source).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CanonicalObject:
    name: str
    grain: str
    fields: dict[str, str]
    # A person object: each source row is one source person record.
    is_person: bool = False
    # Contact points and identifiers may be mapped several times per row (a list).
    repeatable: bool = False
    # Fields that must be mapped when the object is mapped.
    required: tuple[str, ...] = ()
    # Fields whose values form a closed set (accepted_values in dbt).
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)


OBJECTS: dict[str, CanonicalObject] = {
    o.name: o
    for o in [
        CanonicalObject(
            "individual",
            "one per source person record",
            {
                # Split by nameparser into the fields below; a field mapped explicitly wins.
                "full_name": "varchar",
                "salutation": "varchar",
                "first_name": "varchar",
                "middle_name": "varchar",
                "last_name": "varchar",
                "suffix": "varchar",
                "birth_date": "date",
                "gender": "varchar",
                "preferred_language": "varchar",
                "created_ts": "timestamp",
            },
            is_person=True,
        ),
        CanonicalObject(
            "contact_point_email",
            "one per email of a source person record",
            {"email_address": "varchar", "email_type": "varchar"},
            repeatable=True,
            required=("email_address",),
        ),
        CanonicalObject(
            "contact_point_phone",
            "one per phone number of a source person record",
            {"phone_number": "varchar", "phone_type": "varchar", "country": "varchar"},
            repeatable=True,
            required=("phone_number",),
        ),
        CanonicalObject(
            "contact_point_address",
            "one per postal address of a source person record",
            {
                "address_line1": "varchar",
                "address_line2": "varchar",
                "city": "varchar",
                "postal_code": "varchar",
                "region": "varchar",
                "country": "varchar",
                "address_type": "varchar",
            },
            repeatable=True,
        ),
        CanonicalObject(
            "party_identification",
            "one per external identifier of a source person record",
            {"type": "varchar", "number": "varchar"},
            repeatable=True,
            required=("type", "number"),
        ),
        CanonicalObject(
            "sales_order",
            "one per order",
            {
                "order_id": "varchar",
                "individual_id": "varchar",
                "order_ts": "timestamp",
                "status": "varchar",
                "channel": "varchar",
                "amount": "double",
                "currency": "varchar",
            },
            required=("order_id",),
        ),
        CanonicalObject(
            "sales_order_line",
            "one per line of an order",
            {
                "order_id": "varchar",
                "line_number": "integer",
                "sku": "varchar",
                "quantity": "integer",
                "unit_price": "double",
                "amount": "double",
            },
            required=("order_id",),
        ),
        CanonicalObject(
            "product",
            "one per product (sku)",
            {"sku": "varchar", "name": "varchar", "category": "varchar", "price": "double"},
            required=("sku",),
        ),
        CanonicalObject(
            "engagement_email",
            "one per newsletter send, open or click",
            {
                "individual_id": "varchar",
                "email_address": "varchar",
                "event_type": "varchar",
                "event_ts": "timestamp",
                "campaign": "varchar",
            },
            enums={"event_type": ("send", "open", "click", "bounce", "unsubscribe")},
        ),
        CanonicalObject(
            "engagement_web",
            "one per web event, known or anonymous",
            {
                "anonymous_id": "varchar",
                "individual_id": "varchar",
                "session_id": "varchar",
                "event_type": "varchar",
                "page": "varchar",
                "event_ts": "timestamp",
            },
        ),
        CanonicalObject(
            "service_case",
            "one per customer-service case",
            {
                "case_id": "varchar",
                "individual_id": "varchar",
                "opened_ts": "timestamp",
                "closed_ts": "timestamp",
                "status": "varchar",
                "channel": "varchar",
                "priority": "varchar",
                "subject": "varchar",
            },
            required=("case_id",),
        ),
        CanonicalObject(
            "contact_point_consent",
            "one per consent record (purpose and channel)",
            {
                "individual_id": "varchar",
                "email_address": "varchar",
                "phone_number": "varchar",
                "purpose": "varchar",
                "channel": "varchar",
                "status": "varchar",
                "captured_ts": "timestamp",
            },
            required=("purpose", "channel", "status"),
            enums={"status": ("granted", "denied", "withdrawn")},
        ),
    ]
}

PERSON_OBJECTS = tuple(name for name, o in OBJECTS.items() if o.is_person)
CONTACT_POINT_OBJECTS = (
    "contact_point_email",
    "contact_point_phone",
    "contact_point_address",
    "party_identification",
)
