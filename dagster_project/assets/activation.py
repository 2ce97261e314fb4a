"""Segments over customer_360, one export asset per activation, and the read-only catalog."""

import dagster as dg

from cdp.activate.exports import export_activation
from cdp.activate.segments import evaluate_segments
from cdp.activate.specs import ActivationSpec, SegmentSpec
from cdp.catalog import rebuild_catalog
from dagster_project.resources import CdpResource

SEGMENT_KEY = dg.AssetKey("segment_membership")
# UI groups, named for the step of the data flow: ... insights -> segments -> activation.
SEGMENTS_GROUP = "segments"
ACTIVATION_GROUP = "activation"


def build_segment_asset(segments: list[SegmentSpec]) -> dg.AssetsDefinition:
    @dg.asset(
        key=SEGMENT_KEY,
        deps=[dg.AssetKey("customer_360")],
        group_name=SEGMENTS_GROUP,
        kinds={"duckdb", "parquet"},
        description="Members of every segment declared in segments/, with entry/exit history.",
    )
    def segment_membership(context: dg.AssetExecutionContext, cdp: CdpResource):
        result = evaluate_segments(cdp.workspace(), segments, run_id=context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                "segments": len(result.sizes),
                "sizes": dg.MetadataValue.json(result.sizes),
                "entered": dg.MetadataValue.json(result.entered),
                "exited": dg.MetadataValue.json(result.exited),
            }
        )

    return segment_membership


def build_activation_asset(spec: ActivationSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=["activation", spec.name],
        deps=[SEGMENT_KEY],
        group_name=ACTIVATION_GROUP,
        kinds={"csv" if spec.format == "csv" else "json"},
        description=spec.description
        or f"Exports segment `{spec.segment}` for {spec.channel}, consent-checked.",
    )
    def _export(context: dg.AssetExecutionContext, cdp: CdpResource):
        result = export_activation(cdp.workspace(), spec, run_id=context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(result.path),
                "rows": result.rows,
                "segment_size": result.segment_size,
                "excluded_no_consent": result.excluded_no_consent,
                "excluded_no_contact_point": result.excluded_no_contact_point,
            }
        )

    return _export


def build_catalog_asset(upstream: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key="catalog",
        deps=upstream,
        group_name="catalog",
        kinds={"duckdb"},
        description="catalog.duckdb: read-only views over every table of the lake.",
    )
    def catalog(cdp: CdpResource):
        views = rebuild_catalog(cdp.workspace())
        return dg.MaterializeResult(metadata={"views": len(views), "names": ", ".join(views)})

    return catalog
