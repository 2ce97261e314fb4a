"""dbt wiring: harmonisation (staging + intermediate) before identity, marts after it.

Two `@dbt_assets` definitions split the one dbt project by layer, because identity
resolution (a Python asset) sits between them: it reads intermediate models and the
marts read its output as dbt sources whose `meta.dagster.asset_key` names it.
"""

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from cdp import failpoints
from cdp.errors import CdpError
from cdp.harmonise import increments
from cdp.harmonise.dbt_env import (
    DBT_PROJECT_DIR,
    cli_resource_class,
    dbt_env,
    dbt_executable,
    dbt_failure,
    dbt_log_error,
    project_dir,
)
from cdp.io.atomic import clean_duckdb_tmp
from cdp.workspace import Workspace
from dagster_project.resources import CdpResource

# dbt layer (a model's tag or folder) -> the step of the data flow it shows under in the UI.
# The first tag or folder that matches decides: segments and audiences are marts too.
LAYER_GROUPS = {
    "segments": "segments",
    "activation": "activation",
    "staging": "harmonise",
    "intermediate": "harmonise",
    "marts": "insights",
}
# dbt unit tests (hand-made rows with the answers written in the yml) test the SQL, not the
# data: they run in the test suite (tests/test_pipeline.py), not in every pipeline run.
# dagster-dbt copes with them in a build (it skips their results), they only cost time.
BUILD = ["build", "--exclude-resource-type", "unit_test"]
# How a model's `location` names the run id (dbt_models/macros/run.sql).
RUN_ID_IN_LOCATION = "{{ cdp_run_id() }}"


class CdpDbtTranslator(DagsterDbtTranslator):
    """Model name as key; the data-flow step of its layer (tags or folder) as group."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        tags = dbt_resource_props.get("tags") or []
        fqn = dbt_resource_props.get("fqn") or []
        for layer, group in LAYER_GROUPS.items():
            if layer in tags or layer in fqn:
                return group
        return "harmonise"


def _run_started(context: dg.AssetExecutionContext) -> str:
    """When the run started, UTC: the same for every step of one run."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record and record.start_time else None
    when = datetime.fromtimestamp(started, UTC) if started else datetime.now(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def dbt_project(ws: Workspace) -> DbtProject:
    return DbtProject(
        project_dir=project_dir(ws),
        profiles_dir=DBT_PROJECT_DIR,
        target_path=ws.dbt_target_dir,
    )


def dbt_resource(ws: Workspace) -> DbtCliResource:
    return cli_resource_class()(project_dir=dbt_project(ws), dbt_executable=dbt_executable())


def dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    ws: Workspace,
    env: Mapping[str, str] | None = None,
):
    """`dbt build` streamed as Dagster events, with each model's row count. On failure, a
    CdpError names dbt's failing node and its message (run_results.json), instead of
    dagster-dbt's "The dbt CLI process with command ... failed".

    Every invocation shares the workspace's target folder, where `prepare` parsed the
    project: dbt then parses only what changed (partial parsing)."""
    target = ws.dbt_target_dir
    for folder in (ws.harmonised_dir, ws.marts_dir):
        clean_duckdb_tmp(folder)  # what a killed build's COPY left half-written
    # dbt reads the workspace's paths (and `env`: a layer's increment) from the environment
    os.environ.update({**dbt_env(ws), **(env or {})})
    invocation = dbt.cli(BUILD, context=context, target_path=target, raise_on_error=False)
    files = _model_files(invocation.manifest, ws)
    for event in invocation.stream():
        failpoints.reached(f"dbt.{context.op_execution_context.op.name}")  # dbt is mid-build
        yield _with_row_count(event, files)
    if not invocation.is_successful():
        error = invocation.get_error()
        cause = dbt_failure(target, ws) or dbt_log_error(str(error or "")) or "dbt build failed"
        raise CdpError(cause) from None


def _model_files(manifest: Mapping[str, Any], ws: Workspace) -> dict[str, Path]:
    """Model name -> the Parquet file an external model writes."""
    files = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        if config.get("materialized") != "external":
            continue
        location = config.get("location")
        if location:
            # a location naming the run, which dbt renders when the model runs
            location = location.replace(RUN_ID_IN_LOCATION, os.environ.get("CDP_RUN_ID", "manual"))
        files[node["name"]] = (
            # relative to the folder dbt runs in (cdp.harmonise.dbt_env.dbt_paths)
            Path(os.path.normpath(project_dir(ws) / location))
            if location
            else ws.harmonised_dir / f"{node['name']}.parquet"
        )
    return files


def _with_row_count(event, files: dict[str, Path]):
    """Each model's row count as metadata, read from its Parquet footer.

    dagster-dbt's own fetch_row_counts opens dbt's DuckDB file in this process and keeps
    it open, and the next dbt step then cannot take the file's one writer lock.
    """
    if not isinstance(event, dg.Output | dg.AssetMaterialization):
        return event
    key = getattr(event, "output_name", None) or ""
    name = key.split("__")[-1] if key else ""
    path = files.get(name) or files.get(key)
    if path is None or not path.exists():
        return event
    import pyarrow.parquet as pq

    from cdp.io import parts

    found = parts.part_files(path) if path.is_dir() else [path]  # a table kept in parts
    try:
        rows = sum(pq.read_metadata(f).num_rows for f in found)
    except (OSError, ValueError):
        return event
    return event.with_metadata({**event.metadata, "dagster/row_count": rows})


def _layer_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    cdp: CdpResource,
    layer: increments.Layer,
):
    """A dbt build of one layer: only what new loads touched when the layer's last build
    can be trusted (cdp/harmonise/increments.py), else everything."""
    ws = cdp.workspace()
    selected = {key.path[-1] for key in context.selected_asset_keys}
    plan = increments.plan_build(
        ws, layer, selected, engine=cdp.settings().engine, full_refresh=cdp.full_refresh
    )
    mode = "increment" if plan.increment else "full build"
    context.log.info(f"{layer.name}: {mode} ({plan.why})")
    if plan.scope != "none":
        increments.forget(ws, layer)  # a build that does not finish leaves no record
        increments.lay_out_parts(ws, layer, selected, plan)
    env = {layer.env: json.dumps(plan.increment) if plan.increment else ""}
    yield from dbt_build(context, dbt, ws, env)
    increments.tidy_parts(ws, layer, selected)
    if plan.scope == "all":
        increments.record(ws, layer, plan.hold_back)


def build_dbt_assets(ws: Workspace) -> list[dg.AssetsDefinition]:
    project = dbt_project(ws)
    manifest = project.manifest_path
    translator = CdpDbtTranslator()

    @dbt_assets(
        manifest=manifest,
        project=project,
        select="tag:staging tag:intermediate",
        name="dbt_harmonise",
        dagster_dbt_translator=translator,
    )
    def dbt_harmonise(context: dg.AssetExecutionContext, dbt: DbtCliResource, cdp: CdpResource):
        """Staging and intermediate models: every source harmonised to the canonical model."""
        yield from _layer_build(context, dbt, cdp, increments.HARMONISE)

    @dbt_assets(
        manifest=manifest,
        project=project,
        select="tag:marts",
        name="dbt_marts",
        dagster_dbt_translator=translator,
    )
    def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, cdp: CdpResource):
        """Marts on the unified profile: customer_360 and insights."""
        # The segment history names the run that saw each change (one file per run).
        os.environ["CDP_RUN_ID"] = context.run.run_id
        os.environ["CDP_RUN_STARTED"] = _run_started(context)
        yield from _layer_build(context, dbt, cdp, increments.MARTS)

    return [dbt_harmonise, dbt_marts]
