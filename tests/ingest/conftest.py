"""A tiny workspace with one CSV source, one JSONL source and one Parquet source."""

from __future__ import annotations

import pytest

from cdp.config.sources import load_source
from cdp.workspace import Workspace

CSV_SOURCE = """\
name: people
landing: landing/people/*.csv
format: csv
primary_key: id
updated_at: updated
columns:
  updated: timestamp
  age: integer
  dob: date
objects:
  individual: {first_name: first, last_name: last, birth_date: dob}
  contact_point_email: {email_address: email}
"""

JSONL_SOURCE = """\
name: events
landing: landing/events/*.jsonl
format: jsonl
primary_key: event_id
columns: {ts: timestamp}
objects:
  engagement_web: {anonymous_id: cookie, event_ts: ts}
"""

PARQUET_SOURCE = """\
name: orders
landing: landing/orders/*.parquet
format: parquet
primary_key: order_id
objects:
  sales_order: {order_id: order_id, amount: total}
"""

HEADER = "id,first,last,email,age,dob,updated\n"


class Env:
    def __init__(self, root):
        self.ws = Workspace(root)
        self.ws.ensure_dirs()
        for name, text in (
            ("people", CSV_SOURCE),
            ("events", JSONL_SOURCE),
            ("orders", PARQUET_SOURCE),
        ):
            (self.ws.sources_dir / f"{name}.yml").write_text(text)
            (self.ws.landing_dir / name).mkdir(parents=True, exist_ok=True)

    def spec(self, name: str):
        return load_source(self.ws.sources_dir / f"{name}.yml")

    def land(self, source: str, filename: str, data: bytes | str) -> None:
        path = self.ws.landing_dir / source / filename
        if isinstance(data, str):
            data = data.encode("utf-8")
        path.write_bytes(data)


@pytest.fixture
def env(tmp_path) -> Env:
    return Env(tmp_path)
