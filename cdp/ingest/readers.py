"""Stream a landed file as batches of records, sending what cannot be parsed to quarantine.

Each reader yields `Batch`es: parsed rows (column -> list of values, with their 1-based
record numbers) and rejected rows (record number, reason, raw text). Nothing is held
beyond one batch, so memory does not grow with the file.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config.sources import SourceSpec

RAW_TEXT_LIMIT = 10_000
csv.field_size_limit(sys.maxsize)  # huge fields are data, not a reason to crash


@dataclass
class Rejected:
    row_number: int
    reason: str
    raw: str
    field: str | None = None


@dataclass
class Batch:
    columns: list[str]
    rows: pa.Table | None  # parsed rows (values as read), with a `_row_number` column
    rejected: list[Rejected] = field(default_factory=list)
    bad_encoding_rows: list[int] = field(default_factory=list)


class FileUnreadable(Exception):
    """The whole file cannot be read (e.g. a truncated Parquet file)."""


def _clip(text: str) -> str:
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "…[truncated]"


def _string_table(columns: list[str], values: list[list], numbers: list[int]) -> pa.Table:
    arrays = {c: pa.array(v, pa.string()) for c, v in zip(columns, values, strict=True)}
    arrays["_row_number"] = pa.array(numbers, pa.int64())
    return pa.table(arrays)


def read_csv(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[Batch]:
    opts = spec.options
    encoding = (
        "utf-8-sig"
        if opts.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        else opts.encoding
    )
    nulls = set(opts.null_values)
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=opts.delimiter, quotechar=opts.quote, strict=False)
        try:
            header = next(reader) if opts.header else None
        except StopIteration:
            return  # an empty file: no header, no rows
        except csv.Error as e:
            raise FileUnreadable(f"cannot read the header: {e}") from None
        if header is None:
            raise FileUnreadable("header: false is not supported for csv yet; add a header row")
        header = [h.strip() for h in header]
        n = len(header)
        values: list[list] = [[] for _ in header]
        numbers: list[int] = []
        rejected: list[Rejected] = []
        bad_enc: list[int] = []
        row_number = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                row_number += 1
                rejected.append(Rejected(row_number, f"unparseable CSV: {e}", ""))
                continue
            row_number += 1
            if not record:
                row_number -= 1  # a blank line is not a record
                continue
            if any("\ufffd" in x for x in record):
                bad_enc.append(row_number)
            if len(record) != n:
                rejected.append(
                    Rejected(
                        row_number,
                        f"expected {n} fields, got {len(record)} (unbalanced quotes or a wrong delimiter?)",
                        _clip(opts.delimiter.join(record)),
                    )
                )
            else:
                numbers.append(row_number)
                for i, x in enumerate(record):
                    values[i].append(None if x in nulls else x)
            if len(numbers) + len(rejected) >= chunk_rows:
                yield Batch(header, _string_table(header, values, numbers), rejected, bad_enc)
                values, numbers, rejected, bad_enc = [[] for _ in header], [], [], []
        if numbers or rejected:
            yield Batch(header, _string_table(header, values, numbers), rejected, bad_enc)


def _jsonish(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if isinstance(v, float) else str(v)
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def read_jsonl(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[Batch]:
    columns: list[str] = []
    index: dict[str, int] = {}
    values: list[list] = []
    numbers: list[int] = []
    rejected: list[Rejected] = []
    bad_enc: list[int] = []
    with open(path, "rb") as fh:
        row_number = 0
        for raw in fh:
            if not raw.strip():
                continue
            row_number += 1
            if row_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text = raw.decode(spec.options.encoding, errors="replace")
            if "\ufffd" in text:
                bad_enc.append(row_number)
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                rejected.append(
                    Rejected(
                        row_number,
                        f"broken JSON: {e.msg} at column {e.colno}",
                        _clip(text.rstrip()),
                    )
                )
                continue
            if not isinstance(obj, dict):
                rejected.append(
                    Rejected(
                        row_number,
                        f"expected a JSON object, got {type(obj).__name__}",
                        _clip(text.rstrip()),
                    )
                )
                continue
            for k in obj:
                if k not in index:  # a new column: earlier rows get nulls
                    index[k] = len(columns)
                    columns.append(k)
                    values.append([None] * len(numbers))
            numbers.append(row_number)
            for k, col in zip(columns, values, strict=True):
                col.append(_jsonish(obj.get(k)))
            if len(numbers) + len(rejected) >= chunk_rows:
                yield Batch(
                    list(columns), _string_table(columns, values, numbers), rejected, bad_enc
                )
                values, numbers, rejected, bad_enc = [[] for _ in columns], [], [], []
    if numbers or rejected:
        yield Batch(list(columns), _string_table(columns, values, numbers), rejected, bad_enc)


def read_parquet(path: Path, spec: SourceSpec, chunk_rows: int) -> Iterator[Batch]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise FileUnreadable(f"not a readable Parquet file: {str(e).splitlines()[0]}") from None
    columns = pf.schema_arrow.names
    row_number = 0
    try:
        for rb in pf.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([rb])
            numbers = pa.array(range(row_number + 1, row_number + table.num_rows + 1), pa.int64())
            row_number += table.num_rows
            yield Batch(columns, table.append_column("_row_number", numbers))
    except Exception as e:
        raise FileUnreadable(
            f"Parquet file damaged after row {row_number}: {str(e).splitlines()[0]}"
        ) from None


READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}


def sniff_delimiter(path: Path) -> str | None:
    """The delimiter the header line seems to use, to explain a mismatch."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
    except OSError:
        return None
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else None
