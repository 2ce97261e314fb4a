"""`cdp.yml`: workspace-wide settings. Each stage owns and validates its own section."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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


class InsightsSettings(BaseModel):
    """The `insights:` section: how the calculated insights in customer_360 are computed."""

    model_config = ConfigDict(extra="forbid")
    # Every amount is converted to this currency through the seed currency_rates.csv.
    reporting_currency: str = "USD"
    # "Now" for relative windows: latest_event (the latest activity in the lake, so two
    # runs on the same data agree), today, or an ISO date (the end of that day).
    as_of: str = "latest_event"
    # An order is attributed to the last email campaign the person clicked within this
    # many days before it.
    attribution_window_days: int = Field(7, ge=1, le=365)
    # The next best product draws, for each product a person bought, on its this-many
    # strongest pairings (int_product_affinities_computed.pair_rank); 0 takes them all,
    # which at a million customers means hundreds of millions of candidate rows.
    recommendation_pairs: int = Field(25, ge=0)

    @field_validator("reporting_currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", v):
            raise ValueError(f"expected a three-letter ISO 4217 code, got {v!r}")
        return v.upper()

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> str:
        if isinstance(v, dt.date):  # YAML reads 2024-06-30 as a date
            return v.isoformat()
        if v in ("latest_event", "today"):
            return v
        try:
            return dt.date.fromisoformat(str(v)).isoformat()
        except ValueError:
            raise ValueError(
                f"expected latest_event, today or an ISO date (2024-06-30), got {v!r}"
            ) from None


# How one field of the golden record is chosen among the values of a person's records.
Rule = Literal["most_recent", "most_frequent", "source_priority"]
RECONCILED_FIELDS = ("first_name", "last_name", "birth_date", "gender", "email", "phone", "address")


class ReconciliationSettings(BaseModel):
    """The `reconciliation:` section: one rule per field of the golden record."""

    model_config = ConfigDict(extra="forbid")
    first_name: Rule = "most_frequent"
    # People change their last name (marriage); the latest record knows the new one.
    last_name: Rule = "most_recent"
    # A typo in a birth date is a one-off; the value most records agree on is right.
    birth_date: Rule = "most_frequent"
    gender: Rule = "most_recent"
    email: Rule = "most_recent"
    phone: Rule = "most_recent"
    address: Rule = "most_recent"
    # Sources in order of trust, for fields whose rule is source_priority. Sources not
    # listed come after the listed ones; ties go to the most recent record.
    source_priority: list[str] = Field(default_factory=list, validate_default=True)

    @field_validator("source_priority", mode="after")
    @classmethod
    def _priority_given(cls, v: list[str], info: ValidationInfo) -> list[str]:
        users = [f for f in RECONCILED_FIELDS if info.data.get(f) == "source_priority"]
        if users and not v:
            raise ValueError(f"list the sources in order of trust (used by {', '.join(users)})")
        bad = [name for name in v if not re.fullmatch(r"[a-z][a-z0-9_]*", name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a source name (lowercase letters, digits and _)")
        return v

    def rule(self, field: str) -> str:
        return getattr(self, field)


class SparkSettings(BaseModel):
    """The `spark:` section, read when `engine: spark` (docs/scale-out.md). The
    environment wins over cdp.yml: CDP_SPARK_MASTER, and CDP_SPARK_CONF (a JSON object of
    Spark properties, merged over `conf`)."""

    model_config = ConfigDict(extra="forbid")
    # local[*] runs Spark inside the pipeline's own process; spark://host:7077, yarn or
    # k8s://... a cluster's. (Spark Connect: set conf spark.remote, see docs/scale-out.md.)
    master: str = "local[*]"
    # Any Spark property: spark.executor.memory, spark.sql.shuffle.partitions, ...
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_text(cls, v: Any) -> Any:
        # YAML reads `spark.sql.shuffle.partitions: 8` as a number: Spark takes text.
        if isinstance(v, dict):
            return {str(k): str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}
        return v

    def resolved(self) -> SparkSettings:
        """These settings with the environment's CDP_SPARK_MASTER and CDP_SPARK_CONF."""
        import json
        import os

        conf = dict(self.conf)
        extra = os.environ.get("CDP_SPARK_CONF", "").strip()
        if extra:
            try:
                parsed = json.loads(extra)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise ValueError(
                    'CDP_SPARK_CONF: expected a JSON object, e.g. {"spark.driver.memory": "4g"}'
                )
            conf.update(self._conf_text(parsed))
        master = os.environ.get("CDP_SPARK_MASTER", "").strip() or self.master
        return SparkSettings(master=master, conf=conf)


Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = ("duckdb", "spark")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # What runs the SQL (dbt) and scores the pairs (Splink): DuckDB in this process, or
    # Spark, locally or on a cluster (docs/scale-out.md). CDP_ENGINE overrides it.
    engine: Engine = "duckdb"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    # ISO 3166 region used to read phone numbers written without a country code.
    default_region: str = "US"
    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    # Validated by cdp.identity (match rules, thresholds, cluster guards).
    identity: dict[str, Any] = Field(default_factory=dict)
    insights: InsightsSettings = Field(default_factory=InsightsSettings)
    reconciliation: ReconciliationSettings = Field(default_factory=ReconciliationSettings)
    # Validated by the activation stage.
    activation: dict[str, Any] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


def load_settings(path: Path) -> Settings:
    """Read cdp.yml; a missing file means all defaults. CDP_ENGINE, when set, chooses the
    engine instead of `engine:` (the same workspace on the other engine)."""
    import os

    settings = (
        Settings() if not Path(path).exists() else parse_model(Settings, load_yaml(path), path)
    )
    override = os.environ.get("CDP_ENGINE", "").strip().lower()
    if override:
        if override not in ENGINES:
            from cdp.errors import ConfigError

            raise ConfigError(
                path, f"CDP_ENGINE: expected one of {', '.join(ENGINES)}, got {override!r}"
            )
        settings = settings.model_copy(update={"engine": override})
    return settings
