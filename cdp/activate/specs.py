"""Segment and activation declarations: `segments/<name>.yml`, `activations/<name>.yml`.

Both are compiled into dbt models (cdp.activate.compile): the membership, the audiences
and their consent checks are SQL that dbt tests, documents and draws in the lineage.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cdp.config.sources import NAME_RE
from cdp.config.yamlio import load_yaml, parse_model
from cdp.errors import CdpError, ConfigError


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
    # One boolean expression over the columns of customer_360 (cdp.activate.filters).
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
    # Besides the full file, write added.<ext> / removed.<ext> against the previous export.
    delta: bool = False


def _load_all(directory: Path, model: type[_Spec]) -> list:
    specs = []
    for path in sorted([*Path(directory).glob("*.yml"), *Path(directory).glob("*.yaml")]):
        spec = parse_model(model, load_yaml(path), path)
        if spec.name != path.stem:
            raise ConfigError(path, f"name: {spec.name!r} must equal the file name {path.stem!r}")
        specs.append(spec)
    return specs


def load_segments(directory: Path, columns: tuple[str, ...] | None = None) -> list[SegmentSpec]:
    """Every segment, with its filter checked against customer_360's columns and its
    include/exclude references checked for unknown names and cycles."""
    from cdp.activate.filters import compile_filter

    specs = _load_all(directory, SegmentSpec)
    names = {s.name for s in specs}
    for s in specs:
        path = Path(directory) / f"{s.name}.yml"
        for key in ("include", "exclude"):
            for ref in getattr(s, key):
                if ref not in names:
                    raise ConfigError(
                        path,
                        f"{key}: unknown segment {ref!r} (declared: {', '.join(sorted(names))})",
                    )
        try:
            compile_filter(s.filter, columns)
        except CdpError as e:
            raise ConfigError(path, f"filter: {e}") from None
    return order_segments(specs, Path(directory))


def order_segments(specs: list[SegmentSpec], directory: Path) -> list[SegmentSpec]:
    """Segments in an order where every include/exclude comes first; a cycle is refused
    naming its files."""
    by_name = {s.name: s for s in specs}
    graph = {s.name: set(s.include) | set(s.exclude) for s in specs}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as e:
        files = " -> ".join(f"{n}.yml" for n in e.args[1])
        raise ConfigError(
            directory, f"segments include or exclude each other in a cycle: {files}"
        ) from None
    return [by_name[n] for n in order]


def load_activations(
    directory: Path, segments: list[SegmentSpec], columns: tuple[str, ...] | None = None
) -> list[ActivationSpec]:
    """Every activation, its segment declared and its fields columns of customer_360."""
    from cdp.activate.filters import customer_360_columns

    columns = customer_360_columns() if columns is None else columns
    specs = _load_all(directory, ActivationSpec)
    names = {s.name for s in segments}
    for a in specs:
        path = Path(directory) / f"{a.name}.yml"
        if a.segment not in names:
            raise ConfigError(
                path,
                f"segment: unknown segment {a.segment!r} (declared: {', '.join(sorted(names)) or 'none'})",
            )
        unknown = [f for f in a.fields if f not in columns]
        if unknown:
            raise ConfigError(path, f"fields: unknown customer_360 column(s) {', '.join(unknown)}")
    return specs
