"""Load a declared source's landed files into the raw zone of the lake.

Per file: stream it in chunks, quarantine rows that cannot be parsed or have no
primary key, cast declared types (a failed value becomes null and is counted), and
write typed Parquet parts into a staged folder that is renamed into place whole.
The manifest entry is written last: it is the commit point, so a run killed at any
moment is redone cleanly by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp import failpoints
from cdp.config.settings import Settings
from cdp.config.sources import ColumnSpec, SourceSpec
from cdp.ingest.casting import ARROW_TYPES, cast_table, conform
from cdp.ingest.manifest import (
    dq_path,
    file_sha256,
    manifest_path,
    next_load_id,
    read_manifest,
    record_load,
)
from cdp.ingest.readers import READERS, Batch, FileUnreadable, Rejected, sniff_delimiter
from cdp.io.atomic import TMP_PREFIX, clean_tmp, replace_dir, write_parquet
from cdp.workspace import Workspace

Progress = Callable[[int, int, str], None]
EMPTY_LOAD = "000000"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("_load_id", pa.string()),
        ("_source_file", pa.string()),
        ("_row_number", pa.int64()),
        ("_reason", pa.string()),
        ("_field", pa.string()),
        ("_raw", pa.string()),
    ]
)
EXAMPLES = 5


@dataclass
class FileResult:
    path: str
    load_id: str
    rows_in: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0  # rows of erased people, dropped (cdp.privacy.suppression)
    status: str = "loaded"
    message: str = ""


@dataclass
class IngestResult:
    source: str
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    rows_in: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0
    load_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    per_file: list[FileResult] = field(default_factory=list)

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0


def raw_glob(ws: Workspace, source: str) -> str:
    return f"{ws.raw_dir / source}/*/*.parquet"


def landed_files(ws: Workspace, spec: SourceSpec) -> list[Path]:
    return _landed(ws, spec)[0]


def _landed(ws: Workspace, spec: SourceSpec) -> tuple[list[Path], list[str]]:
    """(files to load, warnings about files skipped because they lead out of the workspace).

    A symlink in landing/ (or a symlinked folder) could point at any file the user can
    read; loading it would copy that file into the lake. The warning names the path in
    the workspace only, never where it points or what it holds.
    """
    root = ws.root.resolve()
    files, warnings = [], []
    for p in sorted(ws.root.glob(spec.landing)):
        if not p.is_file() or p.name.startswith("."):
            continue
        if not p.resolve().is_relative_to(root):
            rel = p.relative_to(ws.root)
            warnings.append(f"{rel}: skipped: it leads out of the workspace (a symlink)")
            continue
        files.append(p)
    return files, warnings


def _latest_by_path(manifest: pa.Table) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for row in manifest.to_pylist():
        prev = latest.get(row["path"])
        if prev is None or row["load_id"] > prev["load_id"]:
            latest[row["path"]] = row
    return latest


def _unchanged(path: Path, stat: os.stat_result, seen: dict | None) -> tuple[bool, str | None]:
    """Cheap test first (size and mtime), the content hash only when needed."""
    if seen is None or seen["size"] != stat.st_size:
        return False, None
    if seen["mtime_ns"] == stat.st_mtime_ns:
        return True, seen["sha256"]
    sha = file_sha256(path)
    return sha == seen["sha256"], sha


def pending_files(ws: Workspace, spec: SourceSpec) -> list[Path]:
    """Landed files that are new or changed since they were last loaded."""
    latest = _latest_by_path(read_manifest(ws, spec.name))
    out = []
    for path in landed_files(ws, spec):
        rel = str(path.relative_to(ws.root))
        if not _unchanged(path, path.stat(), latest.get(rel))[0]:
            out.append(path)
    return out


def ingest_source(
    workspace: Workspace,
    spec: SourceSpec,
    settings: Settings | None = None,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> IngestResult:
    ws = workspace
    settings = settings or Settings()
    raw_root, q_root = ws.raw_dir / spec.name, ws.quarantine_dir / spec.name
    for d in (raw_root, q_root):
        d.mkdir(parents=True, exist_ok=True)
        clean_tmp(d)
    _drop_set_aside(ws, spec.name)
    if full_refresh:
        with _set_aside(ws, spec.name):
            return _ingest(ws, spec, settings, progress)
    return _ingest(ws, spec, settings, progress)


def _drop_set_aside(ws: Workspace, source: str) -> None:
    """A full refresh killed midway leaves the old lake set aside; the rebuild it started
    is finished from landing/ by this run, so the old copy is only garbage."""
    for p in _set_aside(ws, source).paths:
        aside = p.with_name(f"{TMP_PREFIX}old-{p.name}")
        if aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)


class _set_aside:
    """Full refresh: move the source's lake aside, put it back if the rebuild fails."""

    def __init__(self, ws: Workspace, source: str):
        self.paths = [
            ws.raw_dir / source,
            ws.quarantine_dir / source,
            manifest_path(ws, source),
            dq_path(ws, source),
        ]
        self.moved: list[tuple[Path, Path]] = []

    def __enter__(self):
        for p in self.paths:
            if p.exists():
                aside = p.with_name(f"{TMP_PREFIX}old-{p.name}")
                if aside.exists():
                    shutil.rmtree(aside) if aside.is_dir() else aside.unlink()
                os.replace(p, aside)
                self.moved.append((p, aside))
        self.paths[0].mkdir(parents=True, exist_ok=True)
        self.paths[1].mkdir(parents=True, exist_ok=True)

    def __exit__(self, exc_type, exc, tb):
        for p, aside in self.moved:
            if exc_type is None:
                shutil.rmtree(aside) if aside.is_dir() else aside.unlink()
            else:
                if p.exists():
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                os.replace(aside, p)
        return False


def _ingest(ws: Workspace, spec: SourceSpec, settings: Settings, progress) -> IngestResult:
    result = IngestResult(source=spec.name)
    manifest = read_manifest(ws, spec.name)
    latest = _latest_by_path(manifest)
    files, result.warnings = _landed(ws, spec)
    if not files:
        result.warnings.append(f"{spec.name}: no files match {spec.landing}")
    previous_columns = _last_columns(manifest)
    for i, path in enumerate(files):
        rel = str(path.relative_to(ws.root))
        stat = path.stat()
        same, sha = _unchanged(path, stat, latest.get(rel))
        if same:
            result.files_skipped += 1
            continue
        load_id = next_load_id(manifest)
        fr, dq_rows, columns, warnings = _load_file(
            ws, spec, settings, path, rel, load_id, previous_columns
        )
        previous_columns = columns or previous_columns
        result.warnings += warnings
        if fr.rows_suppressed:
            # The landed file keeps no trace of erased people either.
            from cdp.privacy.forget import scrub_landed_file

            scrub_landed_file(ws, spec, path, settings.default_region)
            stat, sha = path.stat(), None
        entry = {
            "load_id": load_id,
            "path": rel,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": sha or file_sha256(path),
            "loaded_at": datetime.now(UTC),
            "rows_in": fr.rows_in,
            "rows_kept": fr.rows_kept,
            "rows_quarantined": fr.rows_quarantined,
            "status": fr.status,
            "message": fr.message,
            "columns": columns,
        }
        failpoints.reached("ingest.file_loaded")  # the raw part is in place, not recorded
        record_load(ws, spec.name, entry, dq_rows)
        manifest = read_manifest(ws, spec.name)
        result.per_file.append(fr)
        result.load_ids.append(load_id)
        result.rows_in += fr.rows_in
        result.rows_kept += fr.rows_kept
        result.rows_quarantined += fr.rows_quarantined
        result.rows_suppressed += fr.rows_suppressed
        if fr.status == "failed":
            result.files_failed += 1
        else:
            result.files_loaded += 1
        if progress:
            progress(i + 1, len(files), f"ingesting {spec.name}")
    _ensure_readable(ws, spec)
    return result


def _last_columns(manifest: pa.Table) -> list[str] | None:
    rows = [r for r in manifest.to_pylist() if r["columns"]]
    return max(rows, key=lambda r: r["load_id"])["columns"] if rows else None


def _expected_columns(spec: SourceSpec) -> list[str]:
    return sorted(spec.referenced_columns() | set(spec.columns))


def _load_file(ws, spec, settings, path, rel, load_id, previous_columns):
    """Returns (FileResult, dq rows, columns seen, warnings)."""
    from cdp.privacy.suppression import Suppressor

    fr = FileResult(path=rel, load_id=load_id)
    suppressor = Suppressor(ws)  # the keys of erased people, hashed
    warnings: list[str] = []
    raw_target = ws.raw_dir / spec.name / f"load_id={load_id}"
    q_target = ws.quarantine_dir / spec.name / f"load_id={load_id}"
    raw_staged = raw_target.with_name(f"{TMP_PREFIX}{raw_target.name}")
    q_staged = q_target.with_name(f"{TMP_PREFIX}{q_target.name}")
    for d in (raw_staged, q_staged):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    failures: dict[tuple[str, str], list[int]] = {}
    counts: dict[tuple[str, str], int] = {}
    seen_keys: set[tuple] = set()
    columns: list[str] = []
    part = 0

    def count(field_name: str, check: str, rows: list[int]) -> None:
        key = (field_name, check)
        counts[key] = counts.get(key, 0) + len(rows)
        failures.setdefault(key, [])
        failures[key] = (failures[key] + rows)[:EXAMPLES]

    try:
        for batch in READERS[spec.format](path, spec, settings.ingestion.chunk_rows):
            if not columns:
                columns = list(batch.columns)
                warnings += _schema_warnings(spec, path, rel, columns, previous_columns)
            elif spec.format == "jsonl":
                columns = list(dict.fromkeys(columns + batch.columns))
            good, rejected = _split_keyless(spec, batch)
            if suppressor:
                erased = suppressor.mask(good, spec, settings.default_region)
                if pc.any(erased).as_py():
                    numbers = pc.filter(good.column("_row_number"), erased).to_pylist()
                    count("_row", "erased person (suppression list): dropped", numbers)
                    fr.rows_suppressed += len(numbers)
                    good = good.filter(pc.invert(erased))
            if batch.bad_encoding_rows:
                count(
                    "_row",
                    f"not valid {spec.options.encoding} (bytes replaced)",
                    batch.bad_encoding_rows,
                )
            good, cast_failures = cast_table(good, spec.columns)
            for f in cast_failures:
                count(f.field, f.check, f.row_numbers)
            dups = _duplicates(spec, good, seen_keys)
            if dups:
                count(",".join(spec.primary_key), "duplicate primary key in file", dups)
            good = conform(good, spec.columns, _expected_columns(spec))
            good = good.append_column("_load_id", pa.array([load_id] * good.num_rows, pa.string()))
            good = good.append_column("_source_file", pa.array([rel] * good.num_rows, pa.string()))
            if good.num_rows:
                pq.write_table(good, raw_staged / f"part-{part:05d}.parquet", compression="zstd")
            if rejected:
                pq.write_table(
                    _quarantine_table(rejected, load_id, rel),
                    q_staged / f"part-{part:05d}.parquet",
                    compression="zstd",
                )
            part += 1
            fr.rows_kept += good.num_rows
            fr.rows_quarantined += len(rejected)
    except (FileUnreadable, UnicodeError, OSError) as e:
        # The whole file is unusable: nothing of it is kept, one quarantine row says why.
        for d in (raw_staged, q_staged):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        reason = f"file unreadable: {e}"
        pq.write_table(
            _quarantine_table([Rejected(0, reason, "")], load_id, rel),
            q_staged / "part-00000.parquet",
        )
        fr.rows_in, fr.rows_kept, fr.rows_quarantined = 1, 0, 1
        fr.status, fr.message = "failed", reason
        warnings.append(f"{rel}: {reason}")
        counts.clear()
    fr.rows_in = fr.rows_in or fr.rows_kept + fr.rows_quarantined + fr.rows_suppressed
    if fr.status != "failed" and fr.rows_in == 0:
        fr.status, fr.message = "empty", "no data rows"
        warnings.append(f"{rel}: empty file (no data rows)")
    _publish(raw_staged, raw_target)
    _publish(q_staged, q_target)
    if fr.rows_kept:
        shutil.rmtree(ws.raw_dir / spec.name / f"load_id={EMPTY_LOAD}", ignore_errors=True)
    dq_rows = [
        {
            "load_id": load_id,
            "source_file": rel,
            "field": f,
            "check": c,
            "failures": counts[(f, c)],
            "example_row_numbers": failures[(f, c)],
        }
        for (f, c) in sorted(counts)
    ]
    return fr, dq_rows, columns, warnings


def _publish(staged: Path, target: Path) -> None:
    if any(staged.iterdir()):
        replace_dir(target, staged)
    else:
        staged.rmdir()
        shutil.rmtree(target, ignore_errors=True)


def _schema_warnings(spec, path, rel, columns, previous) -> list[str]:
    """Warnings about the columns of a file, naming declared columns only.

    Column names come from the file, and in a file without a header the first row
    is data (an email, a name): a name the source does not declare is counted, never
    shown, because warnings end up in logs.
    """
    declared = set(_expected_columns(spec))
    out = []
    missing = sorted(spec.referenced_columns() - set(columns))
    if missing:
        hint = ""
        seen = sniff_delimiter(path) if spec.format == "csv" else None
        if seen and seen != spec.options.delimiter:
            hint = f"; the header looks {seen!r}-delimited but the source declares {spec.options.delimiter!r}"
        elif spec.format == "csv" and not declared & set(columns):
            hint = "; no declared column is in the first row: is the header row missing?"
        out.append(
            f"{rel}: column(s) missing from the data: {', '.join(missing)} (filled with nulls){hint}"
        )
    if previous is not None:
        extra = set(columns) - set(previous)
        gone = set(previous) - set(columns) - set(missing)
        if extra:
            out.append(
                f"{rel}: new column(s) since the previous file: {_names(extra, declared)} (kept)"
            )
        if gone:
            out.append(f"{rel}: column(s) no longer present: {_names(gone, declared)}")
    return out


def _names(names: set[str], declared: set[str]) -> str:
    """Declared names in full; the others only as a count (they may be data)."""
    shown = sorted(names & declared)
    hidden = len(names - declared)
    if hidden:
        shown.append(f"{hidden} undeclared column name(s) (not shown: they may be data)")
    return ", ".join(shown)


def _blank(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col), ""))
    return pc.is_null(col)


def _split_keyless(spec: SourceSpec, batch: Batch) -> tuple[pa.Table, list[Rejected]]:
    """Rows without a primary key (or a required column) go to quarantine."""
    table = (
        batch.rows
        if batch.rows is not None
        else pa.table({"_row_number": pa.array([], pa.int64())})
    )
    rejected = list(batch.rejected)
    required = list(spec.primary_key) + [c for c, s in spec.columns.items() if s.required]
    if not table.num_rows:
        return table, rejected
    bad = pa.array([False] * table.num_rows)
    reasons: list[str | None] = [None] * table.num_rows
    for col in required:
        if col not in table.column_names:
            blank = pa.array([True] * table.num_rows)
        else:
            blank = _blank(table.column(col)).combine_chunks()
        for i in pc.indices_nonzero(pc.and_kleene(blank, pc.invert(bad))).to_pylist():
            kind = "primary key" if col in spec.primary_key else "required column"
            reasons[i] = f"no {kind}: {col} is empty"
        bad = pc.or_kleene(bad, blank)
    if pc.any(bad).as_py():
        idx = pc.indices_nonzero(bad).to_pylist()
        numbers = table.column("_row_number").to_pylist()
        data_cols = [c for c in table.column_names if c != "_row_number"]
        subset = table.take(idx).select(data_cols).to_pylist()
        for i, row in zip(idx, subset, strict=True):
            field = next(
                (c for c in required if reasons[i] and reasons[i].endswith(f"{c} is empty")), None
            )
            rejected.append(
                Rejected(
                    numbers[i],
                    reasons[i],
                    json.dumps(row, default=str, ensure_ascii=False)[:10_000],
                    field,
                )
            )
        table = table.filter(pc.invert(bad))
    return table, rejected


def _duplicates(spec: SourceSpec, table: pa.Table, seen: set[tuple]) -> list[int]:
    if not table.num_rows:
        return []
    keys = zip(*(table.column(c).to_pylist() for c in spec.primary_key), strict=True)
    dups = []
    for key, n in zip(keys, table.column("_row_number").to_pylist(), strict=True):
        if key in seen:
            dups.append(n)
        else:
            seen.add(key)
    return dups


def _quarantine_table(rejected: list[Rejected], load_id: str, rel: str) -> pa.Table:
    return pa.table(
        {
            "_load_id": [load_id] * len(rejected),
            "_source_file": [rel] * len(rejected),
            "_row_number": [r.row_number or None for r in rejected],
            "_reason": [r.reason for r in rejected],
            "_field": [r.field for r in rejected],
            "_raw": [r.raw for r in rejected],
        },
        schema=QUARANTINE_SCHEMA,
    )


def _ensure_readable(ws: Workspace, spec: SourceSpec) -> None:
    """dbt reads raw/<source>/*/*.parquet: make sure at least one (empty, typed) file exists."""
    root = ws.raw_dir / spec.name
    if any(root.glob("*/*.parquet")):
        return
    cols = {
        c: pa.nulls(0, ARROW_TYPES[spec.columns.get(c, ColumnSpec()).type])
        for c in _expected_columns(spec)
    }
    cols.update(
        _row_number=pa.array([], pa.int64()),
        _load_id=pa.array([], pa.string()),
        _source_file=pa.array([], pa.string()),
    )
    write_parquet(root / f"load_id={EMPTY_LOAD}" / "part-00000.parquet", pa.table(cols))
