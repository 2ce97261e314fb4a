"""dbt's parse of the project, kept once per machine and reused by each new workspace.

Parsing the project from scratch costs a new workspace about 10 s of CPU before its first
build. Every workspace parses the same project files; only its generated models (and a
few settings dbt reads as environment variables) differ, and dbt's partial parsing
already handles exactly that: given a parse of another workspace, it parses again only
the files that differ. dbt's paths into the workspace are relative to dbt's working
folder (cdp.harmonise.dbt_env), so one workspace's parse names no other workspace; what
is left is the project folder itself (where seeds are read from), rewritten here.

The cache is keyed by the project's files and the dbt versions: partial parsing across
*project* changes is where dbt has been seen to go wrong (a macro left undefined), so a
different project never seeds. dbt checks the rest itself (profile, variables,
environment) and parses from scratch when they differ. Only DuckDB workspaces use it:
Spark's paths are absolute.

Where: $CDP_CACHE_DIR, else $XDG_CACHE_HOME/cdp, else ~/.cache/cdp. It holds the
project's parse only (model SQL and configuration, no rows). A cache that cannot be
read or written is skipped: it only saves time.
"""

from __future__ import annotations

import hashlib
import os
from importlib.metadata import version
from pathlib import Path

PARSE_FILE = "partial_parse.msgpack"
# What the cached copy names instead of the project folder it was parsed in.
_PLACEHOLDER = "/<cdp-dbt-project>"


def cache_dir() -> Path:
    if configured := os.environ.get("CDP_CACHE_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cdp"


def _cached(project_hash: str) -> Path:
    key = hashlib.sha256(
        f"{project_hash} {version('dbt-core')} {version('dbt-duckdb')}".encode()
    ).hexdigest()[:24]
    return cache_dir() / "dbt-parse" / f"{key}.msgpack"


def retarget(data: bytes, old: str, new: str) -> bytes:
    """dbt's partial-parse file with every path in project folder `old` moved to `new`
    (each file's `project_root`, each seed's `root_path`)."""
    import msgpack

    def move(value):
        if isinstance(value, str):
            if value == old or value.startswith(old + "/"):
                return new + value[len(old) :]
            return value
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    manifest = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return msgpack.packb(move(manifest), use_bin_type=True)


def retarget_file(path: Path, old: str, new: str) -> None:
    """Rewrite a workspace's partial-parse file in place after its folder moved. One that
    cannot be read is removed: dbt then parses the project from scratch, as it would."""
    from cdp.io.atomic import write_bytes

    if not path.exists():
        return
    try:
        moved = retarget(path.read_bytes(), old, new)
    except ValueError:  # (msgpack's errors are ValueErrors)
        path.unlink(missing_ok=True)
        return
    write_bytes(path, moved)


def seed(target: Path, project: Path, project_hash: str) -> bool:
    """Give a dbt target path with no parse of its own the cached parse of this project,
    pointed at `project`. Returns whether it did."""
    from cdp.io.atomic import write_bytes

    mine = target / PARSE_FILE
    if mine.exists():
        return False
    try:
        data = _cached(project_hash).read_bytes()
        target.mkdir(parents=True, exist_ok=True)
        write_bytes(mine, retarget(data, _PLACEHOLDER, str(project)))
    except (OSError, ValueError):  # no cache yet, or one this msgpack cannot read
        return False
    return True


def keep(target: Path, project: Path, project_hash: str) -> None:
    """Keep the parse dbt just wrote in `target` for new workspaces, unless one is kept."""
    from cdp.io.atomic import write_bytes

    cached, mine = _cached(project_hash), target / PARSE_FILE
    if cached.exists() or not mine.exists():
        return
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(cached, retarget(mine.read_bytes(), str(project), _PLACEHOLDER))
    except (OSError, ValueError):
        pass  # a cache that cannot be written: the next workspace parses from scratch
