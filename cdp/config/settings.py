"""`cdp.yml`: workspace-wide settings. Each stage owns and validates its own section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cdp.config.yamlio import load_yaml, parse_model


class IngestionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Asset check fails when a run quarantines more than this share of rows (per source
    # unless the source overrides it under `quality:`).
    max_quarantine_rate: float = Field(0.05, ge=0, le=1)
    chunk_rows: int = Field(200_000, gt=0)


class RetentionSettings(BaseModel):
    """How long copies are kept. Unset means kept for ever (nothing is deleted unasked)."""

    model_config = ConfigDict(extra="forbid")
    # Keep this many exports per activation, the newest; older export folders are deleted.
    exports_per_activation: int | None = Field(None, ge=1)
    # Delete raw loads older than this many days once a newer load supersedes them: a
    # newer file of a snapshot source, or a newer version of the same landed file.
    raw_load_days: int | None = Field(None, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # ISO 3166 region used to read phone numbers written without a country code.
    default_region: str = "US"
    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    # Validated by cdp.identity (match rules, thresholds, cluster guards).
    identity: dict[str, Any] = Field(default_factory=dict)
    # Validated by the activation stage.
    activation: dict[str, Any] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


def load_settings(path: Path) -> Settings:
    """Read cdp.yml; a missing file means all defaults."""
    if not Path(path).exists():
        return Settings()
    return parse_model(Settings, load_yaml(path), path)
