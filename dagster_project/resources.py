"""The one resource every CDP asset uses: which workspace to work on, and how."""

from __future__ import annotations

import contextlib

import dagster as dg
from pydantic import PrivateAttr

from cdp import run_plan
from cdp.config.settings import Settings, load_settings
from cdp.harmonise.dbt_warm import warm_dbt
from cdp.run_lock import run_lock
from cdp.workspace import Workspace, resolve_workspace


class CdpResource(dg.ConfigurableResource):
    """Points assets at a workspace folder (read from $CDP_WORKSPACE by default).

    A run holds the workspace's run lock from its first step to its end (the job runs
    in one process, where this is set up once), so a run the UI, the sensor or the
    schedule starts waits for a `cdp run` in progress, and `cdp run` and `cdp forget`
    wait for it or refuse (cdp.run_lock). Under `cdp run` the lock is held already.

    While it runs, `cdp run`'s state says a run is under way (cdp.run_plan): the files
    it loads are no longer new, so if it fails or is killed, the next `cdp run` must do
    everything rather than nothing. A run with no failed step puts the state back.

    On DuckDB, the run's dbt commands fork from one process that imported dbt when the
    run started (cdp/harmonise/dbt_warm.py)."""

    workspace_dir: str
    full_refresh: bool = False
    _hold: contextlib.ExitStack | None = PrivateAttr(default=None)
    _state: dict = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        def waiting(holder) -> None:
            context.log.info(f"waiting for run ({holder.describe('started at')}) to finish")

        ws = self.workspace()
        self._hold = contextlib.ExitStack()
        self._hold.enter_context(run_lock(ws, on_wait=waiting))
        # dbt imported once for the run's dbt commands (under `cdp run`, already)
        self._hold.enter_context(warm_dbt(load_settings(ws.settings_file).engine))
        self._state = run_plan.read_state(ws)
        run_plan.run_started(ws)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._hold is None:
            return
        try:
            failed = context.instance.get_records_for_run(
                context.run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1
            ).records
            if failed:
                run_plan.run_finished(self.workspace(), context.run_id, success=False)
            else:
                run_plan.restore_state(self.workspace(), self._state)
        finally:
            self._hold.close()
            self._hold = None

    def workspace(self) -> Workspace:
        ws = resolve_workspace(self.workspace_dir)
        ws.ensure_dirs()
        return ws

    def settings(self) -> Settings:
        return load_settings(self.workspace().settings_file)
