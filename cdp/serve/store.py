"""The profile store as a long-lived reader sees it: one snapshot at a time, swapped for
the next when a run publishes one.

A run writes `lake/serving/profiles.duckdb` beside the old file and renames it into
place (cdp.serving.profile_store), so the path names a new inode after every run while
the file the server holds open stays whole. Each request asks `current()`, which compares
the path's inode, size and modification time with those of the open snapshot (one stat,
microseconds) and attaches the new file when they differ. The old connection is closed
one swap later, so a request still reading it finishes undisturbed.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from cdp.errors import CdpError
from cdp.serving.profile_store import store_path
from cdp.workspace import Workspace


class NoStore(CdpError):
    """The workspace has no published profile store (no run has finished yet)."""


@dataclass(frozen=True)
class Snapshot:
    con: object  # a duckdb connection with the store attached (cdp.profile.open_store)
    stamp: tuple[int, int, int]  # inode, size, mtime_ns of the file it was opened from
    region: str  # the default phone region the store's numbers were read with
    published: datetime

    @property
    def published_iso(self) -> str:
        return self.published.isoformat(timespec="milliseconds")


class StoreReader:
    def __init__(self, ws: Workspace):
        self.ws = ws
        self.path = store_path(ws.lake_dir)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._retired: list[Snapshot] = []
        self.reopened = 0  # how many times a new snapshot was attached (for /healthz)

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> Snapshot:
        """The newest published snapshot; NoStore if there is none yet."""
        stamp = self._stamp()
        snap = self._snapshot
        if snap is not None and (stamp is None or stamp == snap.stamp):
            return snap  # unchanged (or gone for a moment: keep serving the last one)
        if stamp is None:
            raise NoStore(f"no profile store in {self.ws.root}: run `cdp run` first")
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.stamp == stamp:
                return snap
            fresh = self._open(stamp)
            # Close what was retired one swap ago; keep the last one for requests in flight.
            for old in self._retired:
                old.con.close()
            self._retired = [snap] if snap is not None else []
            self._snapshot = fresh
            self.reopened += 1
            return fresh

    def _open(self, stamp: tuple[int, int, int]) -> Snapshot:
        from cdp.profile import open_store

        con = open_store(self.ws)
        region = con.execute("select default_region from meta").fetchone()[0]
        published = datetime.fromtimestamp(stamp[2] / 1e9, tz=UTC)
        return Snapshot(con, stamp, region, published)

    @contextmanager
    def cursor(self):
        """A cursor of the current snapshot for one request (DuckDB connections are not
        shared between threads; cursors of one connection are)."""
        snap = self.current()
        cur = snap.con.cursor()
        try:
            cur.execute("use store")
            yield snap, cur
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            for snap in [*self._retired, self._snapshot]:
                if snap is not None:
                    snap.con.close()
            self._snapshot, self._retired = None, []
