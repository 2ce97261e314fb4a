"""One export asset per activation, and the read-only catalog.

Segments and audiences are dbt models (cdp.activate.compile); an export asset writes the
files of one audience.
"""

import dagster as dg

from cdp.activate.compile import audience_model
from cdp.activate.exports import export_activation
from cdp.activate.specs import ActivationSpec
from cdp.catalog import rebuild_catalog
from cdp.harmonise.dbt_env import compact_database
from cdp.serving.profile_store import build_profile_store
from dagster_project.resources import CdpResource

# UI group, named for the step of the data flow: ... insights -> segments -> activation.
ACTIVATION_GROUP = "activation"


def build_activation_asset(spec: ActivationSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=["activation", spec.name],
        deps=[dg.AssetKey(audience_model(spec.name))],
        group_name=ACTIVATION_GROUP,
        kinds={"csv" if spec.format == "csv" else "json"},
        description=spec.description
        or f"Exports segment `{spec.segment}` for {spec.channel}, consent-checked.",
    )
    def _export(context: dg.AssetExecutionContext, cdp: CdpResource):
        keep = cdp.settings().retention.exports_per_activation
        result = export_activation(cdp.workspace(), spec, run_id=context.run.run_id, keep=keep)
        metadata = {
            "path": dg.MetadataValue.path(result.path),
            "rows": result.rows,
            "segment_size": result.segment_size,
            "excluded_no_consent": result.excluded_no_consent,
            "excluded_no_contact_point": result.excluded_no_contact_point,
            "previous_run_id": result.previous_run_id or "none",
            "exports_pruned": len(result.pruned),
        }
        if spec.delta:
            metadata.update(added=result.added, removed=result.removed)
        return dg.MaterializeResult(metadata=metadata)

    return _export


def build_catalog_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key="catalog",
        deps=upstream,
        group_name="catalog",
        kinds={"duckdb"},
        description="catalog.duckdb (read-only views over every table of the lake) and the "
        "profile store (lake/serving/profiles.duckdb, indexed for lookups), both published "
        "whole at the end of a run.",
    )
    def catalog(cdp: CdpResource):
        ws = cdp.workspace()
        views = rebuild_catalog(ws)
        # A full refresh builds every profile document; a run copies the unchanged ones.
        store = build_profile_store(ws, reuse=not cdp.full_refresh)
        compact_database(ws)  # dbt's file keeps dropped tables' pages, data included
        return dg.MaterializeResult(
            metadata={
                "views": len(views),
                "names": ", ".join(views),
                "profile_store_rows": dg.MetadataValue.json(store),
            }
        )

    return catalog
