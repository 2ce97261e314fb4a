"""Where a workspace lives and the fixed layout of the files inside it.

A workspace is one folder: configuration people edit (cdp.yml, sources/, segments/,
activations/) and data the pipeline makes (landing/, lake/, exports/, catalog.duckdb).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cdp.errors import CdpError

ENV_VAR = "CDP_WORKSPACE"


@dataclass(frozen=True)
class Workspace:
    root: Path

    # --- configuration people edit -------------------------------------------------
    @property
    def settings_file(self) -> Path:
        return self.root / "cdp.yml"

    @property
    def sources_dir(self) -> Path:
        return self.root / "sources"

    @property
    def segments_dir(self) -> Path:
        return self.root / "segments"

    @property
    def activations_dir(self) -> Path:
        return self.root / "activations"

    @property
    def identity_model_file(self) -> Path:
        """The trained Splink model, saved as JSON so it can be reviewed."""
        return self.root / "identity_model.json"

    # --- data the pipeline makes ----------------------------------------------------
    @property
    def landing_dir(self) -> Path:
        return self.root / "landing"

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def raw_dir(self) -> Path:
        return self.lake_dir / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "quarantine"

    @property
    def meta_dir(self) -> Path:
        """File manifests and data-quality tables of ingestion."""
        return self.lake_dir / "_meta"

    @property
    def harmonised_dir(self) -> Path:
        """Parquet written by dbt (staging/intermediate models)."""
        return self.lake_dir / "harmonised"

    @property
    def identity_dir(self) -> Path:
        return self.lake_dir / "identity"

    @property
    def marts_dir(self) -> Path:
        return self.lake_dir / "marts"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def ground_truth_dir(self) -> Path:
        """Written by `cdp generate` only: the true person behind every record."""
        return self.root / "ground_truth"

    @property
    def catalog_file(self) -> Path:
        """Views over the lake, rebuilt atomically, opened read-only by readers."""
        return self.root / "catalog.duckdb"

    @property
    def state_dir(self) -> Path:
        """Private working state: dbt's DuckDB file, dbt target, Dagster home, temp."""
        return self.root / ".cdp"

    @property
    def dbt_database(self) -> Path:
        return self.state_dir / "dbt.duckdb"

    @property
    def dbt_target_dir(self) -> Path:
        return self.state_dir / "dbt_target"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / "tmp"

    def ensure_dirs(self) -> None:
        for d in (
            self.sources_dir,
            self.landing_dir,
            self.raw_dir,
            self.quarantine_dir,
            self.meta_dir,
            self.harmonised_dir,
            self.identity_dir,
            self.marts_dir,
            self.exports_dir,
            self.state_dir,
            self.tmp_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)


def resolve_workspace(path: str | os.PathLike | None = None, must_exist: bool = True) -> Workspace:
    """--workspace DIR, else $CDP_WORKSPACE, else the current folder when it is a
    workspace (holds cdp.yml), else ./data."""
    here = "." if Path("cdp.yml").is_file() and not Path("data", "cdp.yml").is_file() else None
    raw = path or os.environ.get(ENV_VAR) or here or "data"
    root = Path(raw).expanduser().resolve()
    if must_exist and not root.is_dir():
        raise CdpError(
            f"workspace {root} does not exist: create it with `cdp init {raw}` "
            f"or point --workspace / {ENV_VAR} at an existing one"
        )
    return Workspace(root)
