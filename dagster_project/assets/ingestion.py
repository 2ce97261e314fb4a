"""One ingestion asset per declared source, made by a factory: no code per source."""

import dagster as dg

from cdp.config.sources import SourceSpec
from cdp.ingest import ingest_source
from cdp.ingest.retention import expire_raw_loads
from dagster_project.resources import CdpResource

INGESTION_GROUP = "ingestion"


def raw_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source])


def build_ingestion_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    key = raw_asset_key(spec.name)
    description = (
        f"Loads new or changed files from `{spec.landing}` ({spec.format}) into "
        f"`lake/raw/{spec.name}/` as typed Parquet. Bad rows go to "
        f"`lake/quarantine/{spec.name}/` with a reason."
    )
    if spec.description:
        description = f"{spec.description}\n\n{description}"

    @dg.asset(
        key=key,
        group_name=INGESTION_GROUP,
        description=description,
        kinds={"parquet", "python"},
        check_specs=[
            dg.AssetCheckSpec(
                "quarantine_rate",
                asset=key,
                description="Fails when this run quarantined more than the allowed share of rows.",
            )
        ],
        metadata={"landing": spec.landing, "format": spec.format},
    )
    def _ingest(context: dg.AssetExecutionContext, cdp: CdpResource) -> dg.MaterializeResult:
        ws, settings = cdp.workspace(), cdp.settings()
        result = ingest_source(ws, spec, settings, full_refresh=cdp.full_refresh)
        for warning in result.warnings:
            context.log.warning(warning)
        days = settings.retention.raw_load_days
        expired = expire_raw_loads(ws, spec, days) if days is not None else []
        threshold = spec.quality.max_quarantine_rate
        if "max_quarantine_rate" not in spec.quality.model_fields_set:
            threshold = settings.ingestion.max_quarantine_rate
        rate = result.quarantine_rate
        return dg.MaterializeResult(
            metadata={
                "rows_in": result.rows_in,
                "rows_kept": result.rows_kept,
                "rows_quarantined": result.rows_quarantined,
                "rows_suppressed": result.rows_suppressed,
                "files_loaded": result.files_loaded,
                "files_skipped": result.files_skipped,
                "files_failed": result.files_failed,
                "raw_loads_expired": len(expired),
                "quarantine_rate": float(rate),
                "load_ids": ", ".join(result.load_ids) or "none",
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="quarantine_rate",
                    passed=rate <= threshold,
                    metadata={"quarantine_rate": float(rate), "threshold": float(threshold)},
                    description=(
                        f"{result.rows_quarantined} of {result.rows_in} rows quarantined "
                        f"(limit {threshold:.1%})"
                    ),
                )
            ],
        )

    return _ingest
