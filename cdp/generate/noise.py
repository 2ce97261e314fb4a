"""Every noise rate of the demo generator, in one place.

Rates are probabilities per record (or per person where noted). They are tuned to look
like real multi-system customer data, not to make identity resolution easy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoiseRates:
    # --- which systems know a person (per person) ---
    in_crm: float = 0.60
    in_ecommerce: float = 0.55
    in_newsletter: float = 0.45

    # --- people and households (per person) ---
    household_extra_member: float = 0.45
    """Chance a household gets one more member (geometric: sizes 1..5)."""
    twin: float = 0.03
    """A household member shares the previous member's birth date."""
    shared_family_email: float = 0.15
    """Household members use one family email in some system."""
    shared_landline: float = 0.25
    """Household members give the same landline."""
    married_name_change: float = 0.08
    """A person's older records carry a different (maiden) surname."""
    moved_house: float = 0.10
    """Older records carry a previous address."""
    changed_email: float = 0.12
    """One system has an older, different email."""
    abroad: float = 0.03
    """Lives in the UK or Germany: international phone formats."""

    # --- per record, when a system writes a person ---
    nickname: float = 0.10
    typo_first_name: float = 0.03
    typo_last_name: float = 0.03
    transposition: float = 0.02
    drop_accents: float = 0.50
    """Of names with accents, written without them."""
    upper_case: float = 0.04
    lower_case: float = 0.03
    typo_email: float = 0.01
    typo_street: float = 0.03
    missing_email: float = 0.06
    missing_phone: float = 0.20
    missing_dob: float = 0.08
    missing_address: float = 0.05
    odd_date_format: float = 0.01
    """Birth date written in a format other than the declared one."""
    duplicate_in_system: float = 0.03
    """The same person entered twice in one system, with small variations."""
    stale_record: float = 0.10
    """updated_at years in the past."""
    blank_primary_key: float = 0.0005
    """A row with no id at all: ingestion quarantines it."""


DEFAULT_NOISE = NoiseRates()
