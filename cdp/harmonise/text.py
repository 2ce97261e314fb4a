"""Text keys that need only light libraries (phonenumbers, unidecode): a phone in E.164,
a folded name. Kept apart from the Arrow UDFs so that `cdp profile` can use them and
still start in a fraction of a second."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from unidecode import unidecode

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1_000_000)
def phone_e164(raw: str | None, region: str = "US") -> str | None:
    """E.164 for a valid number, else None. Numbers without a country code use `region`."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1_000_000)
def fold(text: str | None) -> str | None:
    """A match key: NFKC, accents and special letters folded to ASCII, lowercase, alnum only."""
    if text is None:
        return None
    folded = _NON_ALNUM.sub("", unidecode(unicodedata.normalize("NFKC", text)).lower())
    return folded or None
