"""Identity resolution between the intermediate models and the marts."""

import dagster as dg

from cdp.identity.prepare import INPUTS as UPSTREAM_MODELS  # dbt model names = asset keys
from cdp.identity.settings import IdentitySettings
from dagster_project.resources import CdpResource

LINK_KEY = dg.AssetKey("unified_link_individual")


def _output(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key, description=description, deps=[LINK_KEY], group_name="identity", kinds={"parquet"}
    )


def _give_memory_back() -> None:
    """Identity's tables are gone once its files are written, but Arrow's allocator keeps
    the pages; dbt's marts run next in a child process, so hand them back to the OS
    (gigabytes at a million customers)."""
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


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
        _output(
            "identity_clusters",
            "One row per unified individual: its person records and the runs that made it "
            "and last changed it.",
        ),
        _output("identity_edges", "The pairs that joined each cluster, with match weights."),
        _output(
            "identity_near_misses",
            "Pairs scored below the threshold, and links a guard kept apart (with the reason).",
        ),
        _output("identity_history", "Every unified id created, merged, split or retired."),
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
    """Match rules, Splink matching and guarded clustering, with stable ids."""
    from cdp.identity.resolve import resolve  # Splink is imported only when this runs

    ws = cdp.workspace()
    settings = IdentitySettings.from_dict(cdp.settings().identity, ws.settings_file)
    # A full refresh scores every pair again (an increment reuses earlier scores).
    result = resolve(ws, run_id=context.run.run_id, settings=settings, full=cdp.full_refresh)
    _give_memory_back()
    for warning in result.warnings:
        context.log.warning(warning)
    sizes = {str(k): int(v) for k, v in sorted(result.cluster_size_distribution.items())}
    shares = {str(k): float(v) for k, v in result.share_by_stage.items()}
    yield dg.MaterializeResult(
        asset_key=LINK_KEY,
        metadata={
            "records": result.records,
            "mode": result.mode,  # full | incremental | unchanged
            "mode_reason": result.mode_reason,
            "anonymous_visitors": result.anonymous_visitors,
            "clusters": result.clusters,
            "largest_cluster": result.largest_cluster,
            "cluster_size_distribution": dg.MetadataValue.json(sizes),
            "share_by_stage": dg.MetadataValue.json(shares),
            "match_rules": dg.MetadataValue.json(result.match_rules),
            "ignored_identifiers": dg.MetadataValue.json(
                [{"type": t, "values": int(n)} for t, n in result.ignored_identifiers]
            ),
            "blocking_comparisons": dg.MetadataValue.json(result.blocking_comparisons),
            "blocking_left_out": dg.MetadataValue.json(result.blocking_left_out),
            "household_share": float(result.household_share or 0.0),
            "family_guards": result.family_guards,
            "seconds": float(result.seconds),
        },
    )
    yield dg.MaterializeResult(asset_key="identity_clusters", metadata={"rows": result.clusters})
    yield dg.MaterializeResult(asset_key="identity_edges")
    yield dg.MaterializeResult(asset_key="identity_near_misses")
    yield dg.MaterializeResult(asset_key="identity_history")
    limit = settings.max_cluster_size
    yield dg.AssetCheckResult(
        asset_key=LINK_KEY,
        check_name="largest_cluster",
        passed=result.largest_cluster <= limit,
        metadata={"largest_cluster": result.largest_cluster, "limit": limit},
    )
