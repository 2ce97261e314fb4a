"""The one resource every CDP asset uses: which workspace to work on, and how."""

from __future__ import annotations

import contextlib

import dagster as dg
from pydantic import PrivateAttr

from cdp.config.settings import Settings, load_settings
from cdp.run_lock import run_lock
from cdp.workspace import Workspace, resolve_workspace


class CdpResource(dg.ConfigurableResource):
    """Points assets at a workspace folder (read from $CDP_WORKSPACE by default).

    A run holds the workspace's run lock from its first step to its end (the job runs
    in one process, where this is set up once), so a run the UI, the sensor or the
    schedule starts waits for a `cdp run` in progress, and `cdp run` and `cdp forget`
    wait for it or refuse (cdp.run_lock). Under `cdp run` the lock is held already."""

    workspace_dir: str
    full_refresh: bool = False
    _hold: contextlib.ExitStack | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        def waiting(holder) -> None:
            context.log.info(f"waiting for run ({holder.describe('started at')}) to finish")

        self._hold = contextlib.ExitStack()
        self._hold.enter_context(run_lock(self.workspace(), on_wait=waiting))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def workspace(self) -> Workspace:
        ws = resolve_workspace(self.workspace_dir)
        ws.ensure_dirs()
        return ws

    def settings(self) -> Settings:
        return load_settings(self.workspace().settings_file)
