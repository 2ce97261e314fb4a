"""The suppression list: salted hashes of the keys of every person erased.

An erased person must not come back when an old extract is landed again. The list keeps
`sha256(salt + key)` for each of their keys (cdp.privacy.keys), never a clear value, and
ingestion drops every row holding one of them before it reaches the lake: the row is
counted as suppressed, not quarantined (quarantine would keep its text).

The salt is random per workspace (`.cdp/salt`, owner-only), so the hashes cannot be
matched against a list of known emails from elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.io.atomic import write_bytes, write_parquet
from cdp.workspace import Workspace

SCHEMA = pa.schema([("key_hash", pa.string()), ("kind", pa.string()), ("erasure_id", pa.string())])


def salt_path(ws: Workspace) -> Path:
    return ws.state_dir / "salt"


def list_path(ws: Workspace) -> Path:
    return ws.state_dir / "suppression.parquet"


def salt(ws: Workspace) -> bytes:
    path = salt_path(ws)
    if not path.exists():
        write_bytes(path, secrets.token_hex(32).encode())
        os.chmod(path, 0o600)
    return path.read_bytes().strip()


def key_hash(ws_salt: bytes, key: str) -> str:
    return hashlib.sha256(ws_salt + key.encode("utf-8")).hexdigest()


def read(ws: Workspace) -> pa.Table:
    path = list_path(ws)
    return pq.read_table(path, schema=SCHEMA) if path.exists() else SCHEMA.empty_table()


def suppressed_hashes(ws: Workspace) -> set[str]:
    return set(read(ws).column("key_hash").to_pylist())


def add(ws: Workspace, keys: set[str], erasure_id: str) -> int:
    """Add the hashes of `keys`; returns how many were new."""
    s = salt(ws)
    old = read(ws)
    known = set(old.column("key_hash").to_pylist())
    rows = [
        {"key_hash": h, "kind": k.split(":", 1)[0], "erasure_id": erasure_id}
        for k in sorted(keys)
        if (h := key_hash(s, k)) not in known
    ]
    if rows:
        write_parquet(list_path(ws), pa.concat_tables([old, pa.Table.from_pylist(rows, SCHEMA)]))
        os.chmod(list_path(ws), 0o600)
    return len(rows)


class Suppressor:
    """Drops the rows of erased people from each batch ingestion reads."""

    def __init__(self, ws: Workspace):
        self.hashes = suppressed_hashes(ws)
        self.salt = salt(ws) if self.hashes else b""

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def mask(self, table: pa.Table, spec, default_region: str) -> pa.Array:
        """True for the rows holding a suppressed key."""
        from cdp.privacy.keys import row_keys

        return pa.array(
            [
                any(key_hash(self.salt, k) in self.hashes for k in keys)
                for keys in row_keys(table, spec, default_region)
            ],
            pa.bool_(),
        )
