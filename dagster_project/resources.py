"""The one resource every CDP asset uses: which workspace to work on, and how."""

from __future__ import annotations

import dagster as dg

from cdp.config.settings import Settings, load_settings
from cdp.workspace import Workspace, resolve_workspace


class CdpResource(dg.ConfigurableResource):
    """Points assets at a workspace folder (read from $CDP_WORKSPACE by default)."""

    workspace_dir: str
    full_refresh: bool = False

    def workspace(self) -> Workspace:
        ws = resolve_workspace(self.workspace_dir)
        ws.ensure_dirs()
        return ws

    def settings(self) -> Settings:
        return load_settings(self.workspace().settings_file)
