"""`cdp validate`: check a whole workspace in seconds, without running anything.

Loading the YAML is the first check (cdp.yml, sources, segments, activations). Then every
landed file is compared with its source's declaration: each mapped column, the primary
key and updated_at against the file's header (a CSV's first line, the keys of a JSON
Lines file's first lines, a Parquet schema), and a sample of its first rows against the
declared types and date formats, the value maps and the values the canonical model
accepts (a consent status is granted, denied or withdrawn). `cdp run` runs the same
checks first and stops on a problem, so a mistake is heard about before the run, not
inside dbt a minute later.

Each problem is one line naming the file, the key and the column. Values are shown only
for columns not declared as PII, and only where they say what is wrong (a value a map
does not cover).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config.settings import load_settings
from cdp.config.sources import SourceSpec, load_source, reference_problems
from cdp.errors import CdpError, ConfigError
from cdp.workspace import Workspace

SAMPLE_ROWS = 1000  # rows read from the start of each sampled file
SAMPLED_FILES = 3  # the newest files of a source are sampled
HEADER_LINES = 1000  # JSON Lines: keys of the first lines make the header
# A declaration is wrong, not the data noisy, when more than this share of the sampled
# values fail. Below it, the failures are a warning: the run counts them.
FAIL_SHARE = 0.10
SHOWN_VALUES = 5


def path_problem(root: Path) -> str | None:
    """Why a workspace cannot run from this folder, or None."""
    if "'" in str(root):
        return (
            "the workspace's path holds a single quote ('), which the dbt models cannot "
            "take (they name the lake's files inside quoted SQL strings): move the "
            "workspace to a folder whose path has none"
        )
    return None


@dataclass(frozen=True)
class Problem:
    file: str  # relative to the workspace
    key: str  # the YAML key, e.g. objects.individual.first_name
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key}: {self.message}"
            if self.key
            else f"{self.file}: {self.message}"
        )


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    sources: int = 0
    files: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return (
            f"OK: cdp.yml, {self.sources} source(s) and {self.files} landed file(s) checked "
            f"in {self.seconds:.1f}s"
        )


# Segment filters are checked by the segment stage: it registers a function here that
# takes the workspace and the loaded segments and returns problems.
SegmentCheck = Callable[[Workspace, list], Iterable[Problem]]
SEGMENT_CHECKS: list[SegmentCheck] = []


def register_segment_check(check: SegmentCheck) -> SegmentCheck:
    SEGMENT_CHECKS.append(check)
    return check


def _rel(ws: Workspace, path: Path | str) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(ws.root.resolve()).as_posix()
    except ValueError:
        return str(p)


def _from_config_error(ws: Workspace, e: ConfigError) -> Problem:
    key, sep, rest = e.detail.partition(": ")
    # pydantic paths and our own keys come first ("objects.x.y: ..."); a message without
    # one ("invalid YAML at line 3 ...") is kept whole.
    if sep and " " not in key:
        return Problem(_rel(ws, e.path), key, rest)
    return Problem(_rel(ws, e.path), "", e.detail)


def validate_workspace(ws: Workspace, *, new_files_only: bool = False) -> Report:
    """`cdp validate`: the configuration, and every landed file. With `new_files_only`
    (a run that is not a full one, so the configuration is as the last run left it),
    only the landed files not loaded yet: the others passed when they were loaded, and
    at a million customers reading them all again took 0.7 s of every increment."""
    started = time.perf_counter()
    report = Report()
    if problem := path_problem(ws.root):
        report.problems.append(Problem(str(ws.root), "", problem))
    try:
        settings = load_settings(ws.settings_file)
        from cdp.identity.settings import IdentitySettings

        IdentitySettings.from_dict(settings.identity, ws.settings_file)
    except ConfigError as e:
        report.problems.append(_from_config_error(ws, e))
    specs = _load_sources(ws, report)
    _load_segments_and_activations(ws, report)
    # one DuckDB for every sample (a new one with the CDP functions costs about 36 ms)
    con = _sample_connection()
    try:
        for spec in specs:
            report.sources += 1
            _check_source(ws, spec, report, con, new_files_only)
    finally:
        con.close()
    report.seconds = time.perf_counter() - started
    return report


def _load_sources(ws: Workspace, report: Report) -> list[SourceSpec]:
    if not ws.sources_dir.is_dir():
        return []
    files = sorted([*ws.sources_dir.glob("*.yml"), *ws.sources_dir.glob("*.yaml")])
    specs, loaded = [], []
    for path in files:
        try:
            specs.append(load_source(path))
            loaded.append(path)
        except ConfigError as e:
            report.problems.append(_from_config_error(ws, e))
    bad_refs = reference_problems(specs, loaded)
    report.problems += [_from_config_error(ws, e) for e in bad_refs]
    bad = {e.path for e in bad_refs}
    return [s for s, p in zip(specs, loaded, strict=True) if str(p) not in bad]


def _load_segments_and_activations(ws: Workspace, report: Report) -> None:
    from cdp.activate.specs import load_activations, load_segments

    segments: list = []
    try:
        if ws.segments_dir.is_dir():
            segments = load_segments(ws.segments_dir)
    except ConfigError as e:
        report.problems.append(_from_config_error(ws, e))
        return
    try:
        if ws.activations_dir.is_dir():
            load_activations(ws.activations_dir, segments)
    except ConfigError as e:
        report.problems.append(_from_config_error(ws, e))
    for check in SEGMENT_CHECKS:
        report.problems += list(check(ws, segments))


# --- a source against its landed files --------------------------------------------------


def _column_keys(spec: SourceSpec) -> dict[str, list[str]]:
    """Each column the declaration needs in a file -> the YAML keys that name it."""
    keys: dict[str, list[str]] = {}
    for col in spec.primary_key:
        keys.setdefault(col, []).append("primary_key")
    if spec.updated_at:
        keys.setdefault(spec.updated_at, []).append("updated_at")
    for col, cs in spec.columns.items():
        if cs.required:
            keys.setdefault(col, []).append(f"columns.{col}.required")
    for obj, mappings in spec.objects.items():
        for i, m in enumerate(mappings):
            where = f"objects.{obj}" + (f"[{i}]" if len(mappings) > 1 else "")
            for fname, fm in m.items():
                for col in fm.source_columns:
                    keys.setdefault(col, []).append(f"{where}.{fname}")
    return keys


def read_header(path: Path, spec: SourceSpec) -> list[str]:
    """The columns of a landed file, reading as little of it as possible."""
    if spec.format == "parquet":
        return pq.read_schema(path).names
    encoding = spec.options.encoding
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    if spec.format == "csv":
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            reader = csv.reader(fh, delimiter=spec.options.delimiter, quotechar=spec.options.quote)
            return [h.strip() for h in next(reader, [])]
    keys: dict[str, None] = {}
    with open(path, encoding=encoding, errors="replace") as fh:
        for i, line in enumerate(fh):
            if i >= HEADER_LINES:
                break
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a broken line is quarantined by the run
            if isinstance(obj, dict):
                keys.update(dict.fromkeys(obj))
    return list(keys)


def _check_source(
    ws: Workspace,
    spec: SourceSpec,
    report: Report,
    con: duckdb.DuckDBPyConnection,
    new_files_only: bool = False,
) -> None:
    from cdp.ingest import landed_files, pending_files

    yml = _rel(ws, ws.sources_dir / f"{spec.name}.yml")
    files = pending_files(ws, spec) if new_files_only else landed_files(ws, spec)
    report.files += len(files)
    needed = _column_keys(spec)
    readable = []
    for path in files:
        rel = _rel(ws, path)
        try:
            header = set(read_header(path, spec))
        except Exception as e:  # a damaged file: the run records it as failed
            report.problems.append(
                Problem(yml, "landing", f"{rel} cannot be read: {str(e).splitlines()[0]}")
            )
            continue
        if path.stat().st_size == 0 or (not header and spec.format != "parquet"):
            continue  # an empty file: the run records it as empty
        missing = [c for c in needed if c not in header]
        if missing and len(missing) == len(needed) and spec.format == "csv":
            report.problems.append(
                Problem(
                    yml,
                    "options.delimiter",
                    f"none of the declared columns is in the first line of {rel}: is the "
                    f"header row missing, or the delimiter not {spec.options.delimiter!r}?",
                )
            )
            continue
        for col in missing:
            for key in needed[col]:
                report.problems.append(Problem(yml, key, f"column {col!r} is not in {rel}"))
        readable.append(path)
    newest = sorted(readable, key=lambda p: p.stat().st_mtime_ns)[-SAMPLED_FILES:]
    for path in newest:
        try:
            sample = _sample(path, spec)
        except Exception as e:
            report.problems.append(
                Problem(
                    yml, "landing", f"{_rel(ws, path)} cannot be read: {str(e).splitlines()[0]}"
                )
            )
            continue
        if sample is not None and sample.num_rows:
            _check_sample(spec, yml, _rel(ws, path), sample, report, con)
    if not new_files_only:  # earlier loads against the declared types, as they were
        _check_loaded_types(ws, spec, yml, report)


def _check_loaded_types(ws: Workspace, spec: SourceSpec, yml: str, report: Report) -> None:
    """A type declared (or changed) after files were loaded applies to new loads only:
    say so, and what reloads the old ones."""
    from cdp.ingest.casting import ARROW_TYPES

    held: dict[str, dict[str, set[str]]] = {}  # column -> type held -> loads
    for part in sorted((ws.raw_dir / spec.name).glob("load_id=*/*.parquet")):
        meta = pq.read_metadata(part)
        if not meta.num_rows:
            continue
        schema = meta.schema.to_arrow_schema()
        for col, cs in spec.columns.items():
            if col in schema.names and schema.field(col).type != ARROW_TYPES[cs.type]:
                held.setdefault(col, {}).setdefault(str(schema.field(col).type), set()).add(
                    part.parent.name
                )
    for col, types in sorted(held.items()):
        loads = set().union(*types.values())
        report.warnings.append(
            Problem(
                yml,
                f"columns.{col}",
                f"declared {spec.columns[col].type}, but {len(loads)} earlier load(s) hold it "
                f"as {', '.join(sorted(types))}: `cdp run --full-refresh` loads them again "
                "with the declared type",
            )
        )


def _sample(path: Path, spec: SourceSpec) -> pa.Table | None:
    from cdp.ingest.readers import READERS

    for batch in READERS[spec.format](path, spec, SAMPLE_ROWS):
        return batch.rows
    return None


def _share(failed: int, present: int, what: str = "values") -> str:
    return f"{failed} of {present} sampled {what}"


def _values(spec: SourceSpec, cols: list[str], values: list) -> str:
    """Up to five example values, unless a column holds personal data."""
    if any(c in spec.pii for c in cols):
        return ""
    shown = ", ".join(repr(str(v)[:30]) for v in values[:SHOWN_VALUES])
    return f" ({shown}{', ...' if len(values) > SHOWN_VALUES else ''})"


def _note(report: Report, problem: Problem, failed: int, present: int) -> None:
    """A problem when the share is too high for noise, else a warning."""
    if present and failed / present > FAIL_SHARE:
        report.problems.append(problem)
    elif failed:
        report.warnings.append(problem)


def _sample_connection() -> duckdb.DuckDBPyConnection:
    from cdp.harmonise.normalise import register_functions

    con = duckdb.connect()
    register_functions(con)
    return con


def _check_sample(
    spec: SourceSpec,
    yml: str,
    rel: str,
    sample: pa.Table,
    report: Report,
    con: duckdb.DuckDBPyConnection,
) -> None:
    from cdp.ingest.casting import cast_table, conform
    from cdp.ingest.ingest import _expected_columns

    con.register("sample", sample)
    # the primary key: present, and unique within the sample
    key_cols = [c for c in spec.primary_key if c in sample.column_names]
    if len(key_cols) == len(spec.primary_key):
        key = " || '|' || ".join(f"coalesce(trim(cast({_q(c)} as varchar)), '')" for c in key_cols)
        empty = " or ".join(f"nullif(trim(cast({_q(c)} as varchar)), '') is null" for c in key_cols)
        rows, keyless, dups = con.execute(
            f"select count(*), count(*) filter (where {empty}), "
            f"count(*) filter (where not ({empty})) - count(distinct {key}) filter (where not ({empty})) "
            "from sample"
        ).fetchall()[0]
        _note(
            report,
            Problem(
                yml,
                "primary_key",
                f"{_share(keyless, rows, 'rows')} in {rel} have no key: those rows would be quarantined",
            ),
            keyless,
            rows,
        )
        _note(
            report,
            Problem(
                yml,
                "primary_key",
                f"{_share(dups, rows, 'rows')} in {rel} repeat a key of an earlier row: is {', '.join(spec.primary_key)} the key?",
            ),
            dups,
            rows,
        )
    # declared types, as ingestion casts them
    casted, failures = cast_table(sample, spec.columns)
    for f in failures:
        cs = spec.columns[f.field]
        col = sample.column(f.field)
        present = sum(1 for v in col.to_pylist() if v is not None and str(v).strip() != "")
        fmt = f" with format {', '.join(cs.format)}" if cs.format else ""
        dec = f" with decimal {cs.decimal!r}" if cs.decimal else ""
        failed = _failed_count(casted, sample, f.field)
        _note(
            report,
            Problem(
                yml,
                f"columns.{f.field}",
                f"{_share(failed, present)} in {rel} are not a valid {cs.type}{fmt}{dec}",
            ),
            failed,
            present,
        )
    raw = conform(casted, spec.columns, _expected_columns(spec))
    con.register("source", raw)
    _check_mapping(spec, yml, rel, con, report)


def _failed_count(casted: pa.Table, sample: pa.Table, name: str) -> int:
    before, after = sample.column(name).to_pylist(), casted.column(name).to_pylist()
    return sum(
        1
        for b, a in zip(before, after, strict=True)
        if b is not None and str(b).strip() != "" and a is None
    )


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _check_mapping(spec: SourceSpec, yml: str, rel: str, con, report: Report) -> None:
    """The generated staging SQL of each field, run on the sample."""
    from cdp.harmonise.dbt_codegen import duckdb_expr, field_expr, mapping_label, source_text
    from cdp.model.canonical import OBJECTS

    for object_name, mappings in spec.objects.items():
        obj = OBJECTS[object_name]
        for i, mapping in enumerate(mappings):
            for fname, fm in mapping.items():
                text = source_text(fm)
                if text is None or fname == "individual_id":
                    continue
                key = "objects." + mapping_label(object_name, i, len(mappings), fname)
                cols = fm.source_columns
                ctype = obj.fields[fname]
                enum = obj.enums.get(fname)
                expr = duckdb_expr(field_expr(spec, fm, ctype))
                if fm.map is not None:
                    unmapped = con.execute(
                        f"select {text} as v, count(*) from source where {text} is not null "
                        f"and lower({text}) not in ({', '.join(_lit(k) for k in fm.map)}) "
                        "group by v order by count(*) desc, v"
                    ).fetchall()
                    present = _present(con, text)
                    failed = sum(n for _, n in unmapped)
                    _note(
                        report,
                        Problem(
                            yml,
                            f"{key}.map",
                            f"{_share(failed, present)} of column {'+'.join(cols)} in {rel} are not in the map"
                            f"{_values(spec, cols, [v for v, _ in unmapped])}: they would be null",
                        ),
                        failed,
                        present,
                    )
                    continue
                if enum:
                    # Values outside the closed set fail the run's dbt tests: any is a problem.
                    outside = con.execute(
                        f"select lower({text}) as v, count(*) from source where {text} is not null "
                        f"and lower({text}) not in ({', '.join(_lit(v) for v in enum)}) "
                        "group by v order by count(*) desc, v"
                    ).fetchall()
                    if outside:
                        example = f'"<source value>": <{" | ".join(enum)}>'
                        report.problems.append(
                            Problem(
                                yml,
                                key,
                                f"column {'+'.join(cols)} in {rel} has values that are not one of "
                                f"{', '.join(enum)}{_values(spec, cols, [v for v, _ in outside])}: "
                                f"add a value map: {fname}: {{column: {cols[0]}, map: {{{example}}}}}",
                            )
                        )
                    continue
                if ctype == "varchar":
                    continue
                present = _present(con, text)
                failed = con.execute(
                    f"select count(*) from source where ({text}) is not null and ({expr}) is null"
                ).fetchall()[0][0]
                if fm.format and ctype in ("date", "timestamp"):
                    what = f"fit none of the formats {', '.join(fm.format)}"
                else:
                    what = f"are not a valid {ctype}"
                _note(
                    report,
                    Problem(
                        yml,
                        key,
                        f"{_share(failed, present)} of column {'+'.join(cols)} in {rel} {what}",
                    ),
                    failed,
                    present,
                )


def _present(con, text: str) -> int:
    return con.execute(f"select count(*) from source where ({text}) is not null").fetchall()[0][0]


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_or_raise(ws: Workspace) -> Report:
    """For `cdp run`: the same checks; a CdpError listing the problems if any."""
    report = validate_workspace(ws)
    if report.problems:
        lines = "\n".join(str(p) for p in report.problems)
        raise CdpError(
            f"{len(report.problems)} problem(s) in the workspace; nothing was run:\n{lines}"
        )
    return report
