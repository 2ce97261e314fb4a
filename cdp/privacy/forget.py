"""`cdp forget`: erase one person from every copy the workspace holds.

The subject (an email, a phone, a unified id or `source:record_id`) is resolved to its
unified individual, whose keys (cdp.privacy.keys) are then removed from:
- landing files, rewritten without the person's rows (and the ingest manifest told, so
  the rewritten file is not loaded again as new);
- raw loads and quarantine;
- every derived table: harmonised, identity (links, edges, near misses, history, scored
  pairs, record hashes and values), marts, audiences, segment history, and the
  generator's ground truth;
- every past export, rewritten, with its manifest updated;
- state that may hold copies: dbt's database file (its freed pages keep the rows of
  tables dbt dropped), Splink's and dbt's temporary files, and Dagster's event storage
  and logs.
Then the person's keys go on the suppression list (salted hashes) and the erasure is
written to an audit log that holds no personal data.

Aggregates over many people (a campaign's revenue) are recomputed by the next run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.config.settings import load_settings
from cdp.config.sources import SourceSpec, load_sources
from cdp.errors import CdpError
from cdp.harmonise.normalise import phone_e164
from cdp.harmonise.phone_cache import remove_cache
from cdp.ingest.manifest import file_sha256, manifest_path, read_manifest
from cdp.io import lake
from cdp.io.atomic import TMP_PREFIX, atomic_path, clean_duckdb_tmp, write_parquet, write_text
from cdp.privacy import suppression
from cdp.privacy.keys import count, rows_holding
from cdp.workspace import Workspace

AUDIT_LOG = "erasure_log.jsonl"


@dataclass
class Person:
    """Everything that names one person in the lake."""

    unified_ids: set[str] = field(default_factory=set)
    records: set[tuple[str, str]] = field(default_factory=set)
    cookies: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    truth_ids: set[str] = field(default_factory=set)  # the generator's person ids, if any

    def keys(self) -> set[str]:
        return (
            {f"record:{s}:{r}" for s, r in self.records}
            | {f"cookie:{c}" for c in self.cookies}
            | {f"email:{e}" for e in self.emails}
            | {f"phone:{p}" for p in self.phones}
            | {f"order:{o}" for o in self.orders}
        )

    def clear_values(self) -> set[str]:
        """The values to search raw text for (quarantine, logs)."""
        return self.emails | self.phones | self.cookies | self.unified_ids


@dataclass
class Erasure:
    erasure_id: str
    subject_hash: str
    unified_individuals: int
    dry_run: bool
    files: list[dict] = field(default_factory=list)  # path (relative), rows_removed
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def rows_removed(self) -> int:
        return sum(f["rows_removed"] for f in self.files)


# ---------------------------------------------------------------------------- subject


def _lake(ws: Workspace, *parts: str) -> Path:
    return ws.lake_dir.joinpath(*parts)


def _read(path: Path, where: str, params: list, columns: str = "*") -> list[tuple]:
    if not path.exists():
        return []
    return (
        duckdb.connect()
        .execute(f"select {columns} from {lake.scan(path)} where {where}", params)
        .fetchall()
    )


def resolve(ws: Workspace, subject: str) -> Person:
    """The person the subject names. An unknown email, phone or record is still erased
    from landing and raw (it may not have reached identity yet) and suppressed."""
    subject = subject.strip()
    if not subject:
        raise CdpError(
            "name the person to forget: an email, a phone, a unified id or source:record_id"
        )
    links = _lake(ws, "identity", "unified_link_individual.parquet")
    emails = _lake(ws, "harmonised", "int_contact_point_emails_deduplicated.parquet")
    phones = _lake(ws, "harmonised", "int_contact_point_phones_deduplicated.parquet")
    person = Person()
    sources = {s.name for s in load_sources(ws.sources_dir)}
    if "@" in subject:
        person.emails.add(subject.lower())
        records = _read(
            emails,
            "lower(email_address) = lower(?) or email_match_key = lower(?)",
            [subject, subject],
            "source_name, source_record_id",
        )
    elif ":" in subject and subject.split(":", 1)[0] in sources:
        source, record = subject.split(":", 1)
        person.records.add((source, record))
        records = [(source, record)]
    elif _read(links, "unified_individual_id = ?", [subject], "1"):
        person.unified_ids.add(subject)
        records = []
    else:
        region = load_settings(ws.settings_file).default_region
        e164 = phone_e164(subject, region)
        if e164 is None:
            raise CdpError(
                f"{subject!r} is not an email, a phone number, a unified id of this workspace "
                "or source:record_id (with a declared source)"
            )
        person.phones.add(e164)
        records = _read(phones, "phone_e164 = ?", [e164], "source_name, source_record_id")
    for source, record in records:
        person.unified_ids |= {
            r[0]
            for r in _read(
                links,
                "source_name = ? and source_record_id = ?",
                [source, record],
                "unified_individual_id",
            )
        }
    if len(person.unified_ids) > 1:
        raise CdpError(
            f"that {('email' if '@' in subject else 'value')} is held by "
            f"{len(person.unified_ids)} unified individuals (a shared mailbox or phone?): "
            "forget each by its unified id (see `cdp profile`)"
        )
    _expand(ws, person)
    return person


def _expand(ws: Workspace, person: Person) -> None:
    """Add every record, cookie, email, phone and order of the unified individual."""
    links = _lake(ws, "identity", "unified_link_individual.parquet")
    for uid in list(person.unified_ids):
        for source, record, kind in _read(
            links, "unified_individual_id = ?", [uid], "source_name, source_record_id, record_kind"
        ):
            if kind == "anonymous_visitor":
                person.cookies.add(record)
            else:
                person.records.add((source, record))
    if not person.records:
        return
    pairs = [list(r) for r in person.records]
    con = duckdb.connect()
    con.execute("create table person_records (source_name varchar, source_record_id varchar)")
    con.executemany("insert into person_records values (?, ?)", pairs)
    harmonised = ws.harmonised_dir

    def values(model: str, sql: str) -> set[str]:
        path = harmonised / f"{model}.parquet"
        if not path.exists():
            return set()
        rows = con.execute(sql.replace("{t}", f"read_parquet('{path}')")).fetchall()
        return {r[0] for r in rows if r[0]}

    joined = "from {t} t join person_records using (source_name, source_record_id)"
    person.emails |= values(
        "int_contact_point_emails_deduplicated", f"select lower(t.email_address) {joined}"
    )
    person.emails |= values(
        "int_contact_point_emails_deduplicated", f"select t.email_match_key {joined}"
    )
    person.phones |= values(
        "int_contact_point_phones_deduplicated", f"select t.phone_e164 {joined}"
    )
    # A value other people's records hold too (a home landline, a family mailbox) is
    # theirs as well: their rows are not erased for it, nor kept out when landed again.
    others = "from {t} t anti join person_records using (source_name, source_record_id)"
    emails = "int_contact_point_emails_deduplicated"
    person.emails -= values(emails, f"select lower(t.email_address) {others}")
    person.emails -= values(emails, f"select t.email_match_key {others}")
    person.phones -= values(
        "int_contact_point_phones_deduplicated", f"select t.phone_e164 {others}"
    )
    by_owner = (
        "from {t} t join person_records p on t.individual_source_name = p.source_name "
        "and t.individual_source_record_id = p.source_record_id"
    )
    person.orders |= values("int_sales_orders_deduplicated", f"select t.order_id {by_owner}")
    truth = ws.ground_truth_dir / "records.parquet"
    if truth.exists():
        rows = con.execute(
            f"select t.person_id from read_parquet('{truth}') t "
            "join person_records using (source_name, source_record_id)"
        ).fetchall()
        person.truth_ids |= {str(r[0]) for r in rows}


# ------------------------------------------------------------------------------ erase


class _Plan:
    def __init__(self, ws: Workspace, person: Person, dry_run: bool):
        self.ws, self.person, self.dry_run = ws, person, dry_run
        self.files: list[dict] = []
        self.keys = person.keys()

    def touched(self, path: Path, rows: int) -> None:
        if rows:
            self.files.append({"path": str(path.relative_to(self.ws.root)), "rows_removed": rows})


def forget(ws: Workspace, subject: str, *, dry_run: bool = False) -> Erasure:
    """Erase the subject's person everywhere (or, with dry_run, say what would go)."""
    from cdp.catalog import rebuild_catalog

    person = resolve(ws, subject)
    ws_salt = suppression.salt(ws)
    erasure = Erasure(
        erasure_id=uuid.uuid4().hex[:12],
        subject_hash=suppression.key_hash(ws_salt, f"subject:{subject.strip().lower()}"),
        unified_individuals=len(person.unified_ids),
        dry_run=dry_run,
    )
    plan = _Plan(ws, person, dry_run)
    settings = load_settings(ws.settings_file)
    for spec in load_sources(ws.sources_dir):
        _erase_landing(plan, spec, settings.default_region)
        _erase_raw(plan, spec, settings.default_region)
        _erase_quarantine(plan, spec)
    for folder in (ws.harmonised_dir, ws.identity_dir, ws.marts_dir, ws.ground_truth_dir):
        if not dry_run:
            clean_duckdb_tmp(folder)  # a killed dbt build's half-written file
        for path in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
            if path.is_file():  # a folder of parts: each of its files is listed too
                _erase_derived(plan, path)
    _erase_exports(plan)
    erasure.files = plan.files
    if dry_run:
        return erasure
    _scrub_state(ws, person)
    suppression.add(ws, plan.keys, erasure.erasure_id)
    _audit(ws, erasure)
    from cdp.run_plan import invalidate

    # dbt's database file is gone and landing files were rewritten: the next run is full
    invalidate(ws, f"erasure {erasure.erasure_id}")
    if ws.catalog_file.exists():
        rebuild_catalog(ws)
    from cdp.serving.profile_store import build_profile_store

    # the serving copy, from the lake as it is now: every document built, none copied
    build_profile_store(ws, reuse=False)
    return erasure


def _erase_landing(plan: _Plan, spec: SourceSpec, region: str) -> None:
    from cdp.ingest import landed_files

    for path in landed_files(plan.ws, spec):
        table, rewrite = _read_landed(path, spec)
        if table is None:
            continue
        mask = rows_holding(table, spec, region, plan.keys)
        removed = count(mask)
        plan.touched(path, removed)
        if removed and not plan.dry_run:
            rewrite(pc.invert(mask))
            _update_manifest(plan.ws, spec, path, removed)


def scrub_landed_file(ws: Workspace, spec: SourceSpec, path: Path, region: str) -> int:
    """Rewrite a landed file without the rows of people on the suppression list."""
    table, rewrite = _read_landed(path, spec)
    suppressor = suppression.Suppressor(ws)
    if table is None or not suppressor:
        return 0
    mask = suppressor.mask(table, spec, region)
    removed = count(mask)
    if removed:
        rewrite(pc.invert(mask))
    return removed


def _read_landed(path: Path, spec: SourceSpec):
    """The file as a table of text, and a function that rewrites it keeping the rows of
    a mask, in its own format."""
    if spec.format == "parquet":
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            return None, None

        def rewrite_parquet(keep: pa.Array) -> None:
            with atomic_path(path) as tmp:
                pq.write_table(table.filter(keep), tmp)

        return table, rewrite_parquet
    encoding = spec.options.encoding
    text = path.read_text(
        encoding="utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding,
        errors="replace",
    )
    if spec.format == "jsonl":
        lines = text.splitlines()
        rows = []
        for line in lines:
            try:
                value = json.loads(line) if line.strip() else {}
            except ValueError:
                value = {}
            rows.append(
                {
                    k: None if v is None else str(v)
                    for k, v in (value if isinstance(value, dict) else {}).items()
                }
            )
        table = pa.Table.from_pylist(rows) if rows else pa.table({})

        def rewrite_jsonl(keep: pa.Array) -> None:
            kept = [line for line, k in zip(lines, keep.to_pylist(), strict=True) if k]
            write_text(path, "\n".join(kept) + ("\n" if kept else ""))

        return table, rewrite_jsonl
    opts = spec.options
    records = list(
        csv.reader(io.StringIO(text, newline=""), delimiter=opts.delimiter, quotechar=opts.quote)
    )
    if not records:
        return None, None
    header, body = records[0], records[1:]
    names = [h.strip() for h in header]
    table = pa.table({n: [r[i] if i < len(r) else None for r in body] for i, n in enumerate(names)})

    def rewrite_csv(keep: pa.Array) -> None:
        out = io.StringIO(newline="")
        writer = csv.writer(
            out, delimiter=opts.delimiter, quotechar=opts.quote, lineterminator="\n"
        )
        writer.writerow(header)
        writer.writerows(r for r, k in zip(body, keep.to_pylist(), strict=True) if k)
        with atomic_path(path) as tmp:
            tmp.write_bytes(out.getvalue().encode(encoding))

    return table, rewrite_csv


def _update_manifest(ws: Workspace, spec: SourceSpec, path: Path, removed: int) -> None:
    """The rewritten file is the one already loaded, less the erased rows: record its
    new size and hash so ingestion does not load it again as a new version."""
    manifest = read_manifest(ws, spec.name)
    if not manifest.num_rows:
        return
    rel = str(path.relative_to(ws.root))
    rows = manifest.to_pylist()
    latest = max((r for r in rows if r["path"] == rel), key=lambda r: r["load_id"], default=None)
    if latest is None:
        return
    stat = path.stat()
    latest.update(
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=file_sha256(path),
        rows_in=max(0, (latest["rows_in"] or 0) - removed),
        rows_kept=max(0, (latest["rows_kept"] or 0) - removed),
    )
    write_parquet(manifest_path(ws, spec.name), pa.Table.from_pylist(rows, schema=manifest.schema))


def _erase_raw(plan: _Plan, spec: SourceSpec, region: str) -> None:
    root = plan.ws.raw_dir / spec.name
    for path in sorted(root.glob("*/*.parquet")) if root.is_dir() else []:
        table = pq.read_table(path)
        mask = rows_holding(table, spec, region, plan.keys)
        removed = count(mask)
        plan.touched(path, removed)
        if removed and not plan.dry_run:
            write_parquet(path, table.filter(pc.invert(mask)))


def _erase_quarantine(plan: _Plan, spec: SourceSpec) -> None:
    """Quarantined rows are raw text: drop those that hold any of the person's values."""
    root = plan.ws.quarantine_dir / spec.name
    pattern = _text_pattern(plan.person)
    for path in sorted(root.glob("*/*.parquet")) if root.is_dir() and pattern else []:
        table = pq.read_table(path)
        raw = table.column("_raw").to_pylist()
        keep = pa.array([not (r and pattern.search(r)) for r in raw], pa.bool_())
        removed = table.num_rows - count(keep)
        plan.touched(path, removed)
        if removed and not plan.dry_run:
            write_parquet(path, table.filter(keep))


def _text_pattern(person: Person) -> re.Pattern | None:
    values = set(person.clear_values()) | {r for _, r in person.records}
    values |= {p.lstrip("+")[-10:] for p in person.phones}  # a phone as typed
    values = {v for v in values if v and len(v) >= 3}
    if not values:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.I)


# Columns that name a person in derived tables, and the person's values they hold.
def _derived_values(person: Person) -> dict[str, set[str]]:
    unique_ids = {f"{s}:{r}" for s, r in person.records} | {
        f"anonymous_visitor:{c}" for c in person.cookies
    }
    return {
        "unified_individual_id": person.unified_ids,
        "related_id": person.unified_ids,
        "cluster_l": person.unified_ids,
        "cluster_r": person.unified_ids,
        "unique_id": unique_ids,
        "unique_id_l": unique_ids,
        "unique_id_r": unique_ids,
        "email_address": person.emails,
        "email_match_key": person.emails,
        "individual_email_match_key": person.emails,
        "phone_e164": person.phones,
        "individual_phone_e164": person.phones,
        "anonymous_id": person.cookies,
        "order_id": person.orders,
        "person_id": person.truth_ids,
    }


def _erase_derived(plan: _Plan, path: Path) -> None:
    table = pq.read_table(path)
    if not table.num_rows:
        return
    mask = _derived_mask(table, plan.person)
    removed = count(mask)
    plan.touched(path, removed)
    if removed and not plan.dry_run:
        write_parquet(path, table.filter(pc.invert(mask)))


def _derived_mask(table: pa.Table, person: Person) -> pa.Array:
    mask = pa.array([False] * table.num_rows)
    for column, wanted in _derived_values(person).items():
        if column in table.column_names and wanted:
            values = table.column(column).cast(pa.string())
            mask = pc.or_(mask, pc.fill_null(pc.is_in(values, pa.array(sorted(wanted))), False))
    records = [f"{s}\x1f{r}" for s, r in person.records]
    for src, rec in (
        ("source_name", "source_record_id"),
        ("individual_source_name", "individual_source_record_id"),
    ):
        if records and {src, rec} <= set(table.column_names):
            pair = pc.binary_join_element_wise(
                table.column(src).cast(pa.string()), table.column(rec).cast(pa.string()), "\x1f"
            )
            mask = pc.or_(mask, pc.fill_null(pc.is_in(pair, pa.array(records)), False))
    return mask


def _erase_exports(plan: _Plan) -> None:
    """Rewrite every past export without the person, and its manifest with it."""
    person = plan.person
    hashed = {
        hashlib.sha256(v.lower().strip().encode()).hexdigest()
        for v in person.emails | person.phones
    }
    for manifest_file in sorted(plan.ws.exports_dir.glob("*/*/manifest.json")):
        folder = manifest_file.parent
        if folder.name.startswith(TMP_PREFIX):
            continue
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        changed = False
        for file in sorted(folder.iterdir()):
            if file.suffix not in (".csv", ".jsonl"):
                continue
            removed = _erase_export_file(plan, file, person, hashed)
            plan.touched(file, removed)
            if removed:
                changed = True
                if file.name == Path(manifest.get("path", "")).name:
                    manifest["rows"] = max(0, manifest.get("rows", 0) - removed)
                key = {
                    "added.csv": "added",
                    "added.jsonl": "added",
                    "removed.csv": "removed",
                    "removed.jsonl": "removed",
                }.get(file.name)
                if key and manifest.get(key) is not None:
                    manifest[key] = max(0, manifest[key] - removed)
        if changed and not plan.dry_run:
            manifest["files"] = {
                f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(folder.iterdir())
                if f.name != "manifest.json"
            }
            manifest["erased_rows"] = manifest.get("erased_rows", 0) + sum(
                f["rows_removed"] for f in plan.files if Path(f["path"]).parent.name == folder.name
            )
            write_text(manifest_file, json.dumps(manifest, indent=2) + "\n")
            manifest_file.chmod(0o600)


def _erase_export_file(plan: _Plan, file: Path, person: Person, hashed: set[str]) -> int:
    text = file.read_text(encoding="utf-8")
    wanted = person.unified_ids | person.emails | person.phones | hashed

    def hit(row: dict) -> bool:
        return any(str(v).lstrip("'").lower() in wanted for v in row.values() if v is not None)

    if file.suffix == ".jsonl":
        lines = [ln for ln in text.splitlines() if ln.strip()]
        keep = [ln for ln in lines if not hit(json.loads(ln))]
        removed = len(lines) - len(keep)
        new = "\n".join(keep) + ("\n" if keep else "")
    else:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            return 0
        header, body = rows[0], rows[1:]
        keep = [r for r in body if not hit(dict(zip(header, r, strict=False)))]
        removed = len(body) - len(keep)
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(keep)
        new = out.getvalue()
    if removed and not plan.dry_run:
        write_text(file, new)
        file.chmod(0o600)
    return removed


# ------------------------------------------------------------------------------ state


def _scrub_state(ws: Workspace, person: Person) -> None:
    """Copies outside the lake: temporary files, dbt's database file (its freed pages
    keep rows of the tables dbt dropped; dbt makes it again on the next run), the
    phone numbers already read (cdp.harmonise.phone_cache), dbt logs,
    and Dagster's event storage and logs."""
    shutil.rmtree(ws.tmp_dir, ignore_errors=True)
    ws.tmp_dir.mkdir(parents=True, exist_ok=True)
    for path in (ws.dbt_database, ws.dbt_database.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)
    remove_cache(ws.root)  # numbers already read: only a cache
    for log in ws.state_dir.rglob("*.log"):
        if "dagster_home" not in log.parts:
            log.unlink(missing_ok=True)
    values = sorted(person.clear_values() | {r for _, r in person.records})
    home = ws.state_dir / "dagster_home"
    if home.is_dir() and values:
        for db in home.rglob("*.db"):
            _scrub_sqlite(db, values)
        pattern = _text_pattern(person)
        for path in home.rglob("*"):
            if path.is_file() and path.suffix != ".db" and pattern:
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if pattern.search(text):
                    path.unlink(missing_ok=True)


def _scrub_sqlite(db: Path, values: list[str]) -> None:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            cols = [
                r[1]
                for r in con.execute(f'pragma table_info("{table}")')
                if "CHAR" in (r[2] or "").upper() or "TEXT" in (r[2] or "").upper()
            ]
            for col in cols:
                for v in values:
                    con.execute(
                        f'delete from "{table}" where instr(lower("{col}"), lower(?)) > 0', [v]
                    )
        con.commit()
        con.execute("vacuum")  # freed pages would still hold the deleted text
    finally:
        con.close()


def _audit(ws: Workspace, erasure: Erasure) -> None:
    path = ws.state_dir / AUDIT_LOG
    line = json.dumps(asdict(erasure) | {"rows_removed": erasure.rows_removed})
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    write_text(path, old + line + "\n")
