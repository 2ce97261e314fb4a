"""Word lists for the demo generator, in skewed (Zipf-like) order: common first.

The lists are package data (`cdp/generate/data/vocab.json`), read once at import: edit
the file to change what the demo draws from, not this module.
"""

from __future__ import annotations

import json
from importlib import resources


def _load() -> dict:
    text = resources.files("cdp.generate").joinpath("data", "vocab.json").read_text("utf-8")
    return json.loads(text)


_DATA = _load()

FIRST_NAMES_F: list[str] = _DATA["first_names_female"]
FIRST_NAMES_M: list[str] = _DATA["first_names_male"]
SURNAMES: list[str] = _DATA["surnames"]
STREET_NAMES: list[str] = _DATA["street_names"]
# (long form, abbreviation, abbreviation with a dot)
STREET_TYPES: tuple[tuple[str, ...], ...] = tuple(tuple(t) for t in _DATA["street_types"])
# city, state, ZIP prefix (3 digits), phone area codes
CITIES: tuple[tuple, ...] = tuple(
    (c["city"], c["state"], c["zip_prefix"], tuple(c["area_codes"])) for c in _DATA["cities"]
)
EMAIL_DOMAINS: tuple[str, ...] = tuple(_DATA["email_domains"])
PRODUCT_CATEGORIES: tuple[str, ...] = tuple(_DATA["product_categories"])
CAMPAIGNS = tuple(f"2026-{m:02d}-{name}" for m in range(1, 7) for name in _DATA["campaign_names"])
PAGES: tuple[str, ...] = (*_DATA["pages"], *(f"/p/{c}" for c in PRODUCT_CATEGORIES))
CASE_SUBJECTS: tuple[str, ...] = tuple(_DATA["case_subjects"])
