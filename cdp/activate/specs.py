"""Segment and activation declarations: `segments/<name>.yml`, `activations/<name>.yml`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cdp.config.sources import NAME_RE
from cdp.config.yamlio import load_yaml, parse_model
from cdp.errors import ConfigError


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a valid name (lowercase letters, digits and _)")
        return v


class SegmentSpec(_Spec):
    name: str
    description: str | None = None
    # A SQL boolean expression over the columns of customer_360.
    filter: str = "true"
    # Members of these segments are added (OR) ...
    include: list[str] = Field(default_factory=list)
    # ... and members of these are removed.
    exclude: list[str] = Field(default_factory=list)
    schedule: str | None = None


Channel = Literal["email", "sms", "ads", "personalisation"]

# Which consent channel covers an activation channel.
CONSENT_CHANNEL = {"email": "email", "sms": "sms", "ads": "ads", "personalisation": "web"}


class ActivationSpec(_Spec):
    name: str
    description: str | None = None
    segment: str
    channel: Channel
    format: Literal["csv", "jsonl"] = "csv"
    # Columns of customer_360 to export, in order.
    fields: list[str] = Field(default_factory=lambda: ["unified_individual_id"])
    # Consent purpose that must be granted for the channel's contact point.
    consent_purpose: str = "marketing"
    # For ads: export SHA-256 of the normalised email / E.164 phone instead of clear text.
    hash_identifiers: bool = False


def _load_all(directory: Path, model: type[_Spec]) -> list:
    specs = []
    for path in sorted([*Path(directory).glob("*.yml"), *Path(directory).glob("*.yaml")]):
        spec = parse_model(model, load_yaml(path), path)
        if spec.name != path.stem:
            raise ConfigError(path, f"name: {spec.name!r} must equal the file name {path.stem!r}")
        specs.append(spec)
    return specs


def load_segments(directory: Path) -> list[SegmentSpec]:
    specs = _load_all(directory, SegmentSpec)
    names = {s.name for s in specs}
    for s in specs:
        for key in ("include", "exclude"):
            for ref in getattr(s, key):
                if ref not in names:
                    raise ConfigError(
                        Path(directory) / f"{s.name}.yml",
                        f"{key}: unknown segment {ref!r} (declared: {', '.join(sorted(names))})",
                    )
    return specs


def load_activations(directory: Path, segments: list[SegmentSpec]) -> list[ActivationSpec]:
    specs = _load_all(directory, ActivationSpec)
    names = {s.name for s in segments}
    for a in specs:
        if a.segment not in names:
            raise ConfigError(
                Path(directory) / f"{a.name}.yml",
                f"segment: unknown segment {a.segment!r} (declared: {', '.join(sorted(names)) or 'none'})",
            )
    return specs
