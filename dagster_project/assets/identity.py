"""Identity resolution between the intermediate models and the marts."""

import dagster as dg

from cdp.identity import resolve
from cdp.identity.prepare import INPUTS as UPSTREAM_MODELS  # dbt model names = asset keys
from cdp.identity.settings import IdentitySettings
from dagster_project.resources import CdpResource

LINK_KEY = dg.AssetKey("unified_link_individual")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            LINK_KEY,
            description="Every source person record and logged-in anonymous visitor, "
            "mapped to a stable unified_individual_id, with its strongest link.",
            deps=[dg.AssetKey(m) for m in UPSTREAM_MODELS],
            group_name="identity",
            kinds={"splink", "parquet"},
        ),
        dg.AssetSpec(
            "unified_individual",
            description="One row per unified individual.",
            deps=[LINK_KEY],
            group_name="identity",
            kinds={"parquet"},
        ),
        dg.AssetSpec(
            "identity_edges",
            description="The pairs that joined each cluster, with match weights: the evidence.",
            deps=[LINK_KEY],
            group_name="identity",
            kinds={"parquet"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "largest_cluster",
            asset=LINK_KEY,
            description="Fails when the largest unified individual has more records than allowed.",
        )
    ],
)
def identity_resolution(context: dg.AssetExecutionContext, cdp: CdpResource):
    """Deterministic stitching, Splink matching and guarded clustering, with stable ids."""
    ws = cdp.workspace()
    settings = IdentitySettings.from_dict(cdp.settings().identity, ws.settings_file)
    result = resolve(ws, run_id=context.run.run_id, settings=settings)
    for warning in result.warnings:
        context.log.warning(warning)
    sizes = {str(k): int(v) for k, v in sorted(result.cluster_size_distribution.items())}
    shares = {str(k): float(v) for k, v in result.share_by_stage.items()}
    yield dg.MaterializeResult(
        asset_key=LINK_KEY,
        metadata={
            "records": result.records,
            "anonymous_visitors": result.anonymous_visitors,
            "clusters": result.clusters,
            "largest_cluster": result.largest_cluster,
            "cluster_size_distribution": dg.MetadataValue.json(sizes),
            "share_by_stage": dg.MetadataValue.json(shares),
            "ignored_identifiers": dg.MetadataValue.json(
                [{"type": t, "records": int(n)} for t, n in result.ignored_identifiers]
            ),
            "household_share": float(result.household_share or 0.0),
            "family_guards": result.family_guards,
            "seconds": float(result.seconds),
        },
    )
    yield dg.MaterializeResult(asset_key="unified_individual", metadata={"rows": result.clusters})
    yield dg.MaterializeResult(asset_key="identity_edges")
    limit = settings.max_cluster_size
    yield dg.AssetCheckResult(
        asset_key=LINK_KEY,
        check_name="largest_cluster",
        passed=result.largest_cluster <= limit,
        metadata={"largest_cluster": result.largest_cluster, "limit": limit},
    )
