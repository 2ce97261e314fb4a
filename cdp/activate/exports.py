"""Write an activation's export from its audience (dbt model audience__<name>).

Who is exported, to which contact point and with which consent verdict is decided in
dbt (cdp.activate.compile, individual_consent); this module only writes the files:
the full export, and with `delta: true` the rows added and removed since the previous
export, plus a manifest with the counts of everyone left out, by reason, never listed.

Files are written private (0600, in a 0700 folder) and atomically: a staged folder is
renamed into place whole, so a killed run leaves no half-written export behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cdp import failpoints
from cdp.activate.compile import HASHED
from cdp.activate.specs import CONSENT_CHANNEL, ActivationSpec
from cdp.errors import CdpError
from cdp.io import lake
from cdp.io.atomic import TMP_PREFIX, clean_tmp, replace_dir
from cdp.workspace import Workspace


@dataclass
class ExportResult:
    activation: str
    segment: str
    run_id: str
    path: str
    rows: int
    segment_size: int
    excluded_no_contact_point: int
    excluded_no_consent: int
    added: int | None = None
    removed: int | None = None
    previous_run_id: str | None = None
    pruned: list[str] = field(default_factory=list)


def audience_path(ws: Workspace, name: str) -> Path:
    return ws.marts_dir / "audiences" / f"{name}.parquet"


def export_columns(spec: ActivationSpec) -> list[str]:
    """The exported columns, in the declared order (hashed where asked)."""
    return [f"{f}_sha256" if spec.hash_identifiers and f in HASHED else f for f in spec.fields]


def export_activation(
    ws: Workspace, spec: ActivationSpec, run_id: str, keep: int | None = None
) -> ExportResult:
    audience = audience_path(ws, spec.name)
    if not audience.exists():
        raise CdpError(f"no audience for activation {spec.name}: run the marts (dbt) first")
    con = duckdb.connect()
    # dbt-duckdb writes an empty external model as one all-null row: skip it.
    con.execute(
        f"create view audience as select * from {lake.scan(audience)} "
        "where unified_individual_id is not null"
    )
    size, no_contact, no_consent = con.execute(
        "select count(*), count(*) filter (where not has_contact_point), "
        "count(*) filter (where has_contact_point and not is_consented) from audience"
    ).fetchone()
    columns = ", ".join(_ident(c) for c in export_columns(spec))
    query = f"select {columns} from audience where is_eligible order by unified_individual_id"
    target = ws.exports_dir / spec.name / run_id
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_tmp(target.parent)  # a killed run's half-written export, full of contact points
    staged = target.with_name(f"{TMP_PREFIX}{run_id}")
    # Exports hold contact points: only the owner may read them, from the first byte on.
    staged.mkdir(mode=0o700)
    out_file = staged / f"{spec.name}.{spec.format}"
    rows = _write(con, query, out_file, spec)
    previous = previous_export(ws, spec, run_id)
    result = ExportResult(
        activation=spec.name,
        segment=spec.segment,
        run_id=run_id,
        path=str(target / out_file.name),
        rows=rows,
        segment_size=size,
        excluded_no_contact_point=no_contact,
        excluded_no_consent=no_consent,
        previous_run_id=previous[0] if previous else None,
    )
    if spec.delta:
        result.added, result.removed = _write_delta(con, spec, query, staged, previous)
    manifest = {
        **{k: v for k, v in asdict(result).items() if k != "pruned"},
        "channel": spec.channel,
        "consent_purpose": spec.consent_purpose,
        "consent_channel": CONSENT_CHANNEL[spec.channel],
        "format": spec.format,
        "fields": export_columns(spec),
        "hashed": spec.hash_identifiers,
        "delta": spec.delta,
        "written_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "files": {
            f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(staged.iterdir())
        },
        "path": str(Path(spec.name) / run_id / out_file.name),
    }
    failpoints.reached("export.staged")  # the CSV is written, the manifest is not
    (staged / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for f in staged.iterdir():
        f.chmod(0o600)
    replace_dir(target, staged)
    if keep is not None:
        result.pruned = prune_exports(ws, spec.name, keep)
    return result


def _write(con: duckdb.DuckDBPyConnection, query: str, path: Path, spec: ActivationSpec) -> int:
    if spec.format == "csv":
        query = _neutralise_formulas(con, query)
        con.execute(f"copy ({query}) to '{path}' (header, delimiter ',', quote '\"')")
    else:
        con.execute(f"copy ({query}) to '{path}' (format json)")
    return con.execute(f"select count(*) from ({query})").fetchone()[0]


def previous_export(ws: Workspace, spec: ActivationSpec, run_id: str) -> tuple[str, Path] | None:
    """The latest complete export of this activation before this run: (run id, file)."""
    folder = ws.exports_dir / spec.name
    best = None
    if not folder.is_dir():
        return None
    for manifest in folder.glob("*/manifest.json"):
        run = manifest.parent.name
        if run == run_id or run.startswith(TMP_PREFIX):
            continue
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        file = manifest.parent / f"{spec.name}.{spec.format}"
        if file.exists() and (best is None or meta.get("written_at", "") > best[0]):
            best = (meta.get("written_at", ""), run, file)
    return (best[1], best[2]) if best else None


def _write_delta(con, spec, query, staged: Path, previous) -> tuple[int, int]:
    """added: members now exported who were not in the previous export; removed: rows of
    the previous export whose member is no longer exported (left the segment, withdrew
    consent, lost the contact point)."""
    ext = spec.format
    if previous is None:
        con.execute(f"create or replace view previous as select * from ({query}) where false")
    else:
        reader = (
            f"read_csv('{previous[1]}', header=true, all_varchar=true, quote='\"')"
            if ext == "csv"
            else f"read_json('{previous[1]}', format='newline_delimited')"
        )
        con.execute(f"create or replace view previous as select * from {reader}")
    con.execute(f"create or replace view current_export as {query}")
    added = (
        "select * from current_export where unified_individual_id not in "
        "(select unified_individual_id from previous) order by unified_individual_id"
    )
    removed = (
        "select * from previous where unified_individual_id not in "
        "(select unified_individual_id from current_export) order by unified_individual_id"
    )
    if "unified_individual_id" not in spec.fields:
        raise CdpError(
            f"activations/{spec.name}.yml: delta: needs unified_individual_id among the fields"
        )
    n_added = _write(con, added, staged / f"added.{ext}", spec)
    n_removed = _write(con, removed, staged / f"removed.{ext}", spec)
    return n_added, n_removed


def prune_exports(ws: Workspace, name: str, keep: int) -> list[str]:
    """Keep the `keep` newest exports of an activation (retention.exports_per_activation)."""
    folder = ws.exports_dir / name
    runs = []
    for manifest in folder.glob("*/manifest.json"):
        try:
            written = json.loads(manifest.read_text(encoding="utf-8")).get("written_at", "")
        except (OSError, ValueError):
            written = ""
        runs.append((written, manifest.parent))
    runs.sort(reverse=True)
    pruned = []
    for _, path in runs[keep:]:
        shutil.rmtree(path, ignore_errors=True)
        pruned.append(path.name)
    return pruned


def _neutralise_formulas(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote.

    A value such as `=HYPERLINK("http://x","y")` in a CSV opened in Excel or Sheets is
    executed (OWASP "CSV injection"). Only text columns are touched, so a negative
    number in a numeric column stays a number; and a text cell that is a plain signed
    number (an E.164 phone `+14155550101`) cannot run anything, so it is left whole
    for the SMS tool that reads it.
    """
    text = [
        name for name, kind, *_ in con.execute(f"describe {query}").fetchall() if kind == "VARCHAR"
    ]
    if not text:
        return query
    cases = []
    for c in map(_ident, text):
        risky = f"left({c}, 1) in ('=', '+', '-', '@', chr(9), chr(13))"
        number = f"regexp_full_match({c}, '[+-][0-9]+([.][0-9]+)?')"
        cases.append(f"case when {risky} and not {number} then chr(39) || {c} else {c} end as {c}")
    return f"select * replace ({', '.join(cases)}) from ({query})"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
