"""The workspace instance's event log: Dagster's SQLite storage, with its connections kept.

Dagster's SQLite event log opens a new engine and connection for every event it stores
and closes them after (twice for an asset event, which is mirrored in the index shard).
A run of this pipeline stores about 800 events (a materialisation, a plan entry and a
check result per dbt model and test), and that opening and closing was about a third of
the orchestration's own time on a small workspace (py-spy: `SqliteEventLogStorage._connect`
and `store_event`). This storage keeps one connection per shard (the index and the
latest few runs) and is otherwise Dagster's: same files, same schema, so `dagster dev`,
the daemon and older workspaces read them as before.

Safety: Dagster's base class already serialises every use of a connection behind one
lock (`_db_lock`), and never nests two, so a shard's one connection is never shared by
two threads at once. The files are in WAL mode (Dagster sets it at creation); commits use
`synchronous=NORMAL`, WAL's usual setting, so a killed process loses nothing it
committed and only a power cut can drop the last events.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import create_db_conn_string
from sqlalchemy.pool import StaticPool

# Shards kept open: the index, and the runs a process has touched lately (the daemon and
# the UI go through many runs; each is a file handle).
_OPEN_SHARDS = 8
_BUSY_TIMEOUT_SECONDS = 30


class WorkspaceEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage that reuses one connection per shard (module docstring)."""

    def __init__(self, base_dir: str, inst_data=None):
        # A relative folder is under the instance's home, so a moved workspace still works.
        home = os.environ.get("DAGSTER_HOME")
        if home and not os.path.isabs(base_dir):
            base_dir = os.path.join(home, base_dir)
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._present: set[tuple[str, str]] = set()  # (table, column or "") found
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = db.create_engine(
            create_db_conn_string(self._base_dir, shard),
            poolclass=StaticPool,
            connect_args={"timeout": _BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )

        @db.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > _OPEN_SHARDS:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    # Dagster checks that a table (or the asset key table's column) exists before each
    # asset and check event it stores, with a new engine for every table check: about a
    # tenth of a small run's orchestration time (py-spy: `has_table` under
    # `store_asset_check_event`). What was found is remembered; what was not is asked
    # again, since a migration may add it.
    def has_table(self, table_name: str) -> bool:
        # (Dagster's own check, on a connection of its own: it is asked while one of ours
        # holds the lock)
        return self._found((table_name, ""), super().has_table, table_name)

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        ask = super()._has_asset_key_col_on_connection
        return self._found(("asset_keys", column_name), ask, conn, column_name)

    def _found(self, key: tuple[str, str], ask, *args) -> bool:
        """True if `key` was found before; else `ask(*args)`, remembered when true."""
        if key in self._present:
            return True
        found = ask(*args)
        if found:
            self._present.add(key)
        return found

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()

    def wipe(self) -> None:  # deletes the run files: close them first
        self._close_all()
        self._present.clear()
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()
