"""The source YAML the generator writes beside its data: the same format a user writes."""

from __future__ import annotations

SOURCES: dict[str, str] = {
    "crm_contacts": """\
name: crm_contacts
description: CRM contacts exported nightly from the sales CRM.
landing: landing/crm_contacts/*.csv
format: csv
options: {delimiter: ",", encoding: utf-8, quote: '"'}
primary_key: contact_id
updated_at: modified_at
pii: [first_name, last_name, dob, email, phone, street]
columns:
  created_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
  modified_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  individual:
    salutation: salutation
    first_name: first_name
    last_name: last_name
    birth_date: {column: dob, format: "%Y-%m-%d"}
    gender: gender
    created_ts: created_at
  contact_point_email: {email_address: email}
  contact_point_phone: {phone_number: phone}
  contact_point_address:
    address_line1: street
    city: city
    postal_code: zip
    region: state
    country: country
  party_identification:
    - {type: loyalty_id, number: loyalty_no}
""",
    "ecommerce_accounts": """\
name: ecommerce_accounts
description: Web shop customer accounts.
landing: landing/ecommerce_accounts/*.jsonl
format: jsonl
primary_key: account_id
updated_at: updated_at
pii: [email, first_name, last_name, phone, birth_date, shipping_street]
columns:
  created_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
  updated_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  individual:
    first_name: first_name
    last_name: last_name
    birth_date: {column: birth_date, format: "%Y-%m-%d"}
    created_ts: created_at
  contact_point_email: {email_address: email}
  contact_point_phone: {phone_number: phone}
  contact_point_address:
    address_line1: shipping_street
    city: shipping_city
    postal_code: shipping_zip
    region: shipping_state
    country: shipping_country
    address_type: {value: shipping}
  party_identification:
    - {type: loyalty_id, number: loyalty_no}
    - {type: ecommerce_account, number: account_id}
""",
    "newsletter_subscribers": """\
name: newsletter_subscribers
description: Newsletter sign-ups from the email service provider.
landing: landing/newsletter_subscribers/*.csv
format: csv
primary_key: subscriber_id
updated_at: updated_at
pii: [email, first_name, last_name, phone, zip]
columns:
  signup_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
  updated_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  individual:
    first_name: first_name
    last_name: last_name
    created_ts: signup_at
  contact_point_email: {email_address: email}
  contact_point_phone: {phone_number: phone}
  contact_point_address: {postal_code: zip}
""",
    "ecommerce_orders": """\
name: ecommerce_orders
description: Orders from the web shop (ERP export).
landing: landing/ecommerce_orders/*.parquet
format: parquet
primary_key: order_id
objects:
  sales_order:
    order_id: order_id
    individual_id: {column: account_id, source: ecommerce_accounts}
    order_ts: order_ts
    status: status
    channel: channel
    amount: total
    currency: currency
""",
    "ecommerce_order_lines": """\
name: ecommerce_order_lines
description: Order lines from the web shop (ERP export).
landing: landing/ecommerce_order_lines/*.parquet
format: parquet
primary_key: [order_id, line_no]
objects:
  sales_order_line:
    order_id: order_id
    line_number: line_no
    sku: sku
    quantity: qty
    unit_price: unit_price
    amount: line_total
""",
    "products": """\
name: products
description: Product catalogue.
landing: landing/products/*.parquet
format: parquet
primary_key: sku
objects:
  product: {sku: sku, name: name, category: category, price: price}
""",
    "web_events": """\
name: web_events
description: Website events; account_id is set once a visitor logs in.
landing: landing/web_events/*.jsonl
format: jsonl
primary_key: event_id
columns:
  ts: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  engagement_web:
    anonymous_id: anonymous_id
    individual_id: {column: account_id, source: ecommerce_accounts}
    session_id: session_id
    event_type: event_type
    page: page
    event_ts: ts
""",
    "email_engagement": """\
name: email_engagement
description: Newsletter sends, opens and clicks from the email service provider.
landing: landing/email_engagement/*.csv
format: csv
primary_key: event_id
pii: [email]
columns:
  event_ts: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  engagement_email:
    individual_id: {column: subscriber_id, source: newsletter_subscribers}
    email_address: email
    event_type: event_type
    event_ts: event_ts
    campaign: campaign
""",
    "service_cases": """\
name: service_cases
description: Customer-service cases from the help desk.
landing: landing/service_cases/*.csv
format: csv
primary_key: case_id
pii: [requester_email, requester_phone]
columns:
  opened_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
  closed_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  service_case:
    case_id: case_id
    individual_id: {column: contact_id, source: crm_contacts}
    opened_ts: opened_at
    closed_ts: closed_at
    status: status
    channel: channel
    priority: priority
    subject: subject
""",
    "consent_records": """\
name: consent_records
description: Consent captured per purpose and channel; the latest record wins.
landing: landing/consent_records/*.csv
format: csv
primary_key: consent_id
updated_at: captured_at
pii: [email, phone]
columns:
  captured_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}
objects:
  contact_point_consent:
    email_address: email
    phone_number: phone
    purpose: purpose
    channel: channel
    status: status
    captured_ts: captured_at
""",
}

FORMATS = {name: text.split("format: ", 1)[1].split("\n", 1)[0] for name, text in SOURCES.items()}
