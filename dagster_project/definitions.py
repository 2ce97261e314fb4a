"""Entry point for `dagster dev` / `make ui`: the workspace comes from $CDP_WORKSPACE or ./data."""

from cdp.workspace import resolve_workspace
from dagster_project.build import build_definitions

defs = build_definitions(resolve_workspace())
