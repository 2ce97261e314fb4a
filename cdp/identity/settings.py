"""The `identity:` section of cdp.yml: match rules, comparisons, blocking, cluster guards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cdp.config.yamlio import format_validation_error
from cdp.errors import ConfigError

# Columns of the identity input (dbt model int_person_records_prepared) that comparisons
# and blocking rules may name.
MATCH_COLUMNS = (
    "first_name_key",
    "first_name_canon",
    "last_name_key",
    "birth_date",
    "email_key",
    "phone",
    "postal_code",
    "address_line1_key",
    "house_number",
    "city_key",
    "national_id",
)


class ComparisonRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str
    # exact: equal or not; name: exact / nickname / close spelling; fuzzy: exact or close;
    # date: exact / one typo away; email: exact / same user part, other domain;
    # address: the street with `postal_column` and `city_column`, as one comparison, where
    # a similar street counts only with the same `house_column` in the same area (postal
    # code equal or one typo away, or the same city); identifier: exact / one typo or
    # transposition away.
    kind: Literal["exact", "name", "fuzzy", "date", "email", "address", "identifier"] = "exact"
    term_frequency: bool = True
    postal_column: str = "postal_code"
    house_column: str = "house_number"
    city_column: str = "city_key"

    @field_validator("column", "postal_column", "house_column", "city_column")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in MATCH_COLUMNS:
            raise ValueError(f"unknown column {v!r} (expected one of: {', '.join(MATCH_COLUMNS)})")
        return v


# What a match rule may require to be equal: a personal email (any of the record's), a
# phone (any), a party identifier of a type in `strong_identifiers` ("identifier") or of
# one named type ("identifier:loyalty_id"), or a single-valued field.
RULE_FIELDS = (
    "email",
    "phone",
    "identifier",
    "first_name",
    "last_name",
    "birth_date",
    "postal_code",
    "address",
    "national_id",
)
# What a match rule may require to be present on both records and compatible.
COMPATIBLE_FIELDS = ("first_name", "last_name", "birth_date")


class MatchRule(BaseModel):
    """A deterministic rule, applied before Splink: records equal on every `exact` field
    and compatible on every `compatible` field are one person, unless a guard says no."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    exact: Annotated[list[str], Field(min_length=1)]
    compatible: list[str] = Field(default_factory=list)

    @field_validator("exact")
    @classmethod
    def _exact(cls, v: list[str]) -> list[str]:
        for f in v:
            base = f.split(":", 1)[0]
            if base not in RULE_FIELDS or (":" in f and base != "identifier"):
                raise ValueError(
                    f"unknown field {f!r} (expected one of: {', '.join(RULE_FIELDS)}, "
                    "or identifier:<type>)"
                )
        return v

    @field_validator("compatible")
    @classmethod
    def _compatible(cls, v: list[str]) -> list[str]:
        for f in v:
            if f not in COMPATIBLE_FIELDS:
                raise ValueError(
                    f"unknown field {f!r} (expected one of: {', '.join(COMPATIBLE_FIELDS)})"
                )
        return v


DEFAULT_MATCH_RULES = [
    MatchRule(name="same_party_identifier", exact=["identifier"]),
    MatchRule(name="same_email", exact=["email"]),
    MatchRule(name="same_phone_and_first_name", exact=["phone"], compatible=["first_name"]),
]

DEFAULT_COMPARISONS = [
    ComparisonRule(column="first_name_key", kind="name"),
    ComparisonRule(column="last_name_key", kind="name"),
    ComparisonRule(column="birth_date", kind="date", term_frequency=False),
    ComparisonRule(column="email_key", kind="email"),
    ComparisonRule(column="phone", kind="exact"),
    ComparisonRule(column="address_line1_key", kind="address", term_frequency=False),
    ComparisonRule(column="national_id", kind="identifier", term_frequency=False),
    ComparisonRule(column="city_key", kind="fuzzy"),
]

DEFAULT_BLOCKING = [
    ["first_name_key", "last_name_key"],
    ["email_key"],
    ["phone"],
    ["first_name_canon", "birth_date"],
    ["last_name_key", "birth_date"],
    ["address_line1_key", "postal_code"],
    ["birth_date", "postal_code"],
    ["national_id"],
    ["birth_date", "address_line1_key"],
    ["first_name_key", "postal_code"],
    ["last_name_key", "postal_code"],
    ["first_name_key", "address_line1_key"],
]


class IdentitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # An edge may join two records at or above this match probability; the guards below
    # (conflicts, support, size) are what keep clusters tight, so it need not be extreme.
    match_threshold: float = Field(0.8, gt=0, lt=1)
    # ... and two groups of records that already hold several members need this many
    # edges between them, or one edge at `strong_match_threshold`: no merge on one weak link.
    min_cross_edges: int = Field(2, ge=1)
    strong_match_threshold: float = Field(0.9999, gt=0, lt=1)
    # Pairs at or above this, kept apart, are recorded as near misses for `cdp explain`.
    near_miss_threshold: float = Field(0.1, gt=0, lt=1)
    # Deterministic rules applied before Splink (docs/identity.md). Each value a rule
    # links on is subject to the frequency guard below, and every link to the guards.
    match_rules: list[MatchRule] = Field(default_factory=lambda: list(DEFAULT_MATCH_RULES))
    # Person-level identifier types: the `identifier` rule field links on them, and two
    # records holding different values of one type are two people.
    strong_identifiers: list[str] = Field(
        default_factory=lambda: ["loyalty_id", "login_id", "customer_id", "account_id"]
    )
    # A value (email, phone, identifier) held by more records than this is a shared
    # mailbox, a shop's landline or a default: no rule links on it, and Splink does not
    # compare it. Reported by type and count, never by value.
    max_identifier_records: int = Field(5, ge=2)
    # Birth dates further apart than this many character edits conflict.
    birth_date_conflict_edits: int = Field(2, ge=1)
    # No unified individual is built beyond this many person records; the asset check
    # fails if one is.
    max_cluster_size: int = Field(30, ge=2)
    # A blocking rule generating more comparisons than this is refused. By default the
    # limit grows with the data: `max_comparisons_per_record` times the records (at least
    # a million), so a rule that compares everyone with everyone is caught at any size.
    max_comparisons_per_rule: int | None = Field(None, ge=1)
    max_comparisons_per_record: int = Field(200, ge=1)
    # A blocking value shared by more records than this (a group-quarters address, a
    # placeholder postcode) is left out of that rule; the rule runs for every other
    # value, and what was left out is reported. Blocking rules left at their defaults
    # tighten this further rather than fail when a rule would still exceed the limit.
    max_block_records: int = Field(1000, ge=2)
    # Comparisons that members of one household share: surname and home. When every one of
    # them agrees (a positive match weight), they say "same household", not "same person":
    # the pair is re-scored from `household_prior` and its other comparisons alone.
    household_comparisons: list[str] = Field(
        default_factory=lambda: ["last_name_key", "address_line1_key"]
    )
    # Comparisons a household shares too without marking one (the city): they are not
    # personal evidence when a household pair is re-scored.
    household_shared: list[str] = Field(default_factory=lambda: ["city_key"])
    # Chance that two records of one household are one person, before personal details.
    # "auto" learns it from each run's pairs (see docs/identity.md), so data full of
    # families and data of repeated records each get their own; a number fixes it.
    household_prior: Annotated[float, Field(gt=0, lt=1)] | Literal["auto"] = "auto"
    # The guards that keep a family's members apart: unrelated first names, and birth
    # dates more than `birth_date_conflict_edits` apart. "auto": on, unless the data
    # shows no families, i.e. nearly every pair sharing a surname and home is one person
    # (the learnt household share is at least `no_family_share`); then such differences
    # are data-entry errors, as in repeated-record data.
    family_guards: bool | Literal["auto"] = "auto"
    no_family_share: float = Field(0.9, gt=0, le=1)
    # Below this many records, the model is not trained: documented defaults are used.
    min_training_records: int = Field(500, ge=10)
    training_max_pairs: float = Field(3e6, gt=0)
    # Share of true pairs found by the sure rules (same email and first name; same full
    # name and birth date) that estimate the prior chance of a match.
    prior_rules_recall: float = Field(0.7, gt=0, le=1)
    # Above this many person records, the model is trained on a uniform sample of them:
    # enough matched pairs for EM, at a fraction of the time and memory.
    training_sample_records: int = Field(300_000, ge=1000)
    seed: int = 42
    comparisons: list[ComparisonRule] = Field(default_factory=lambda: list(DEFAULT_COMPARISONS))
    blocking_rules: list[list[str]] = Field(
        default_factory=lambda: [list(r) for r in DEFAULT_BLOCKING]
    )

    @field_validator("match_rules")
    @classmethod
    def _rule_names(cls, rules: list[MatchRule]) -> list[MatchRule]:
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"match rule names must be unique: {', '.join(dup)}")
        return rules

    @field_validator("blocking_rules")
    @classmethod
    def _rules(cls, rules: list[list[str]]) -> list[list[str]]:
        for r in rules:
            if not r:
                raise ValueError("a blocking rule needs at least one column")
            for c in r:
                if c not in MATCH_COLUMNS:
                    raise ValueError(
                        f"unknown column {c!r} in blocking rule {r} "
                        f"(expected one of: {', '.join(MATCH_COLUMNS)})"
                    )
        return rules

    @model_validator(mode="after")
    def _household(self) -> IdentitySettings:
        known = {c.column for c in self.comparisons}
        for key in ("household_comparisons", "household_shared"):
            listed = getattr(self, key)
            unknown = [c for c in listed if c not in known]
            if unknown and key not in self.model_fields_set:
                # The default names columns the user's own comparisons may leave out.
                setattr(self, key, [c for c in listed if c in known])
            elif unknown:
                raise ValueError(
                    f"{key} names {unknown}, which are not comparisons "
                    f"(comparisons: {', '.join(sorted(known))})"
                )
        return self

    def comparison_limit(self, records: int) -> int:
        if self.max_comparisons_per_rule is not None:
            return self.max_comparisons_per_rule
        return max(1_000_000, records * self.max_comparisons_per_record)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any] | None, path: Path | str | None = None
    ) -> IdentitySettings:
        try:
            return cls.model_validate(data or {})
        except ValidationError as e:
            msg = format_validation_error(e)
            raise ConfigError(
                path or "cdp.yml", "; ".join(f"identity.{p}" for p in msg.split("; "))
            ) from None


EXAMPLE_YAML = """\
identity:
  match_threshold: 0.8           # a pair may join two records at or above this probability
  min_cross_edges: 2             # groups merge on this many edges, or one strong edge:
  strong_match_threshold: 0.9999 #   never on one weak link
  match_rules:                    # deterministic, before Splink; every link still passes the guards
    - {name: same_party_identifier, exact: [identifier]}   # a strong identifier below
    - {name: same_email, exact: [email]}                   # any personal email of the records
    - {name: same_phone_and_first_name, exact: [phone], compatible: [first_name]}
  strong_identifiers: [loyalty_id, login_id, customer_id, account_id]   # person-level ids
  max_identifier_records: 5      # a value held by more records is not personal: ignored, reported
  max_block_records: 1000        # a blocking value shared by more records is left out of its rule
  max_cluster_size: 30           # never build a person from more records than this
  household_comparisons: [last_name_key, address_line1_key]   # shared by a household: when
  household_shared: [city_key]   # shared by a household too, never personal evidence
  household_prior: auto          #   all agree, personal details alone decide (auto: learnt)
  family_guards: auto            # unrelated first names and birth dates stay apart, unless the data has no families
  max_comparisons_per_record: 200   # refuse a blocking rule that would explode
  # max_comparisons_per_rule: 50000000   # or an absolute limit
  training_sample_records: 300000   # train on a uniform sample above this many records
  prior_rules_recall: 0.7        # share of true pairs the sure rules find (for the prior)
  comparisons:                   # kind: exact | name | fuzzy | date | email | address | identifier
    - {column: first_name_key, kind: name}
    - {column: last_name_key, kind: name}
    - {column: birth_date, kind: date, term_frequency: false}
    - {column: email_key, kind: email}
    - {column: phone, kind: exact}
    # street, house number, postal code and city as one comparison: a shared home counts once
    - {column: address_line1_key, kind: address, term_frequency: false}
    - {column: national_id, kind: identifier, term_frequency: false}   # party ids of type national_id
    - {column: city_key, kind: fuzzy}
  blocking_rules:                # pairs are compared only when they agree on one rule
    - [first_name_key, last_name_key]
    - [email_key]
    - [phone]
    - [first_name_canon, birth_date]
    - [last_name_key, birth_date]
    - [address_line1_key, postal_code]
    - [birth_date, postal_code]
    - [national_id]
    - [birth_date, address_line1_key]
    - [first_name_key, postal_code]
    - [last_name_key, postal_code]
    - [first_name_key, address_line1_key]
"""
