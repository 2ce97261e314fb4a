"""Assemble the Definitions for one workspace from its declared sources, segments and exports."""

from __future__ import annotations

import dagster as dg

from cdp.activate.specs import load_activations, load_segments
from cdp.config.sources import load_sources
from cdp.errors import CdpError
from cdp.workspace import Workspace
from dagster_project.assets.activation import build_activation_asset, build_catalog_asset
from dagster_project.assets.dbt import build_dbt_assets, dbt_resource
from dagster_project.assets.identity import identity_resolution
from dagster_project.assets.ingestion import build_ingestion_asset
from dagster_project.resources import CdpResource
from dagster_project.schedules import build_nightly_schedule
from dagster_project.sensors import build_landing_sensor

JOB_NAME = "cdp_pipeline"


def build_definitions(
    ws: Workspace,
    *,
    full_refresh: bool = False,
    loggers: dict[str, dg.LoggerDefinition] | None = None,
) -> dg.Definitions:
    """Only reads: loading the definitions writes no file, sets no variable and runs no
    dbt. The workspace's dbt models and manifest are prepared beforehand by `cdp run`,
    `make ui` (`cdp prepare`) or a test fixture (cdp.harmonise.dbt_env.prepare)."""
    specs = load_sources(ws.sources_dir)
    segments = load_segments(ws.segments_dir) if ws.segments_dir.exists() else []
    activations = (
        load_activations(ws.activations_dir, segments) if ws.activations_dir.exists() else []
    )
    if not (ws.dbt_target_dir / "manifest.json").exists():
        raise CdpError(
            f"the dbt project of {ws.root} is not prepared: run `cdp prepare` "
            "(`cdp run` and `make ui` do it)"
        )

    assets: list[dg.AssetsDefinition] = [build_ingestion_asset(s) for s in specs]
    assets += build_dbt_assets(ws)
    assets.append(identity_resolution)
    assets += [build_activation_asset(a) for a in activations]
    upstream = [key for a in assets for key in a.keys]
    assets.append(build_catalog_asset(upstream))

    job = dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.all())
    return dg.Definitions(
        assets=assets,
        resources={
            "cdp": CdpResource(workspace_dir=str(ws.root), full_refresh=full_refresh),
            "dbt": dbt_resource(ws),
        },
        jobs=[job],
        sensors=[build_landing_sensor(ws, specs, job)],
        schedules=[build_nightly_schedule(ws, job)],
        loggers=loggers,
        # Every run's steps in one process, as `cdp run` runs them, also for what the UI
        # materialises: one process holds the run lock (resources.py) for the whole run.
        # With a process per step (Dagster's default), each of up to 15 steps paid for
        # importing Dagster and cdp: a one-file increment of the demo launched by the
        # sensor ran 58 s for 16 s of work.
        executor=dg.in_process_executor,
    )
