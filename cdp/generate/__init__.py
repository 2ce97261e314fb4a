"""`cdp generate`: a realistic, seeded, multi-source demo with ground truth.

People are generated in chunks, each with its own seeded random stream, and every
source gets one file per chunk: memory stays flat and the same seed gives the same
bytes. Ground truth (the true person behind every record and cookie) goes to
`ground_truth/`, outside `landing/`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cdp.generate.declarations import FORMATS, SOURCES
from cdp.generate.noise import DEFAULT_NOISE, NoiseRates
from cdp.generate.people import make_people
from cdp.generate.records import N_PRODUCTS, _price, build_chunk
from cdp.generate.vocab import PRODUCT_CATEGORIES
from cdp.generate.writers import TruthWriter, write_rows
from cdp.io.atomic import write_text
from cdp.workspace import Workspace

CHUNK_PEOPLE = 50_000
EXT = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}

Progress = Callable[[int, int, str], None]

TRUTH_README = """\
# Ground truth

Written by `cdp generate`, never read by the pipeline: it scores identity resolution.

- records.parquet: source_name, source_record_id, person_id. One row per record of a
  person source (crm_contacts, ecommerce_accounts, newsletter_subscribers), duplicates
  within a system included; rows generated without a primary key are not listed.
- anonymous_ids.parquet: anonymous_id, person_id (null for strangers), logged_in (the
  cookie has a login event tying it to an account).
- persons.parquet: the true attributes of each person and their household_id.
"""


@dataclass
class GenerateSummary:
    customers: int
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    files_written: int = 0
    seconds: float = 0.0


def generate(
    workspace: Workspace,
    customers: int,
    seed: int = 42,
    progress: Progress | None = None,
    noise: NoiseRates = DEFAULT_NOISE,
    chunk_people: int = CHUNK_PEOPLE,
    append: bool = False,
) -> GenerateSummary:
    """Generate `customers` people into the workspace's landing folders. With `append`,
    they are new people after the ones already generated, as new files beside the old
    ones (which stay as they are): what a day's new landing files look like."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    started = time.perf_counter()
    ws = workspace
    first_chunk = _next_chunk(ws) if append else 0
    suffix = f"_{first_chunk + 1:05d}" if append else ""
    ws.sources_dir.mkdir(parents=True, exist_ok=True)
    for name, text in SOURCES.items():
        write_text(ws.sources_dir / f"{name}.yml", text)
        if not append:
            # A new generation replaces the previous one whole (fewer chunks leave no stale files).
            shutil.rmtree(ws.landing_dir / name, ignore_errors=True)
        (ws.landing_dir / name).mkdir(parents=True, exist_ok=True)
    ws.ground_truth_dir.mkdir(parents=True, exist_ok=True)
    write_text(ws.ground_truth_dir / "README.md", TRUTH_README)

    summary = GenerateSummary(customers=customers, seed=seed)
    summary.rows = dict.fromkeys(SOURCES, 0)
    records = TruthWriter(
        ws.ground_truth_dir / f"records{suffix}.parquet",
        pa.schema(
            [
                ("source_name", pa.string()),
                ("source_record_id", pa.string()),
                ("person_id", pa.string()),
            ]
        ),
    )
    cookies = TruthWriter(
        ws.ground_truth_dir / f"anonymous_ids{suffix}.parquet",
        pa.schema(
            [("anonymous_id", pa.string()), ("person_id", pa.string()), ("logged_in", pa.bool_())]
        ),
    )
    persons = TruthWriter(
        ws.ground_truth_dir / f"persons{suffix}.parquet",
        pa.schema(
            [
                ("person_id", pa.string()),
                ("household_id", pa.string()),
                ("first_name", pa.string()),
                ("last_name", pa.string()),
                ("birth_date", pa.date32()),
                ("email", pa.string()),
                ("phone", pa.string()),
                ("street", pa.string()),
                ("city", pa.string()),
                ("zip", pa.string()),
                ("state", pa.string()),
            ]
        ),
    )
    chunks = (customers + chunk_people - 1) // chunk_people
    for chunk_no in range(first_chunk, first_chunk + chunks):
        rng = np.random.default_rng([seed, chunk_no])
        done = (chunk_no - first_chunk) * chunk_people
        # person numbers continue after every chunk already generated, so ids never clash
        start = chunk_no * CHUNK_PEOPLE if append else chunk_no * chunk_people
        people = make_people(rng, start, min(chunk_people, customers - done), noise)
        chunk = build_chunk(rng, chunk_no + 1, people, noise)
        for name in SOURCES:
            if name == "products" or not chunk.rows.get(name):
                continue
            fmt = FORMATS[name]
            path = ws.landing_dir / name / f"{name}_{chunk_no + 1:05d}.{EXT[fmt]}"
            summary.rows[name] += write_rows(path, name, fmt, chunk.rows[name])
            summary.files_written += 1
        records.write(chunk.truth_records)
        cookies.write(chunk.truth_cookies)
        persons.write(_persons_columns(people))
        if progress:
            progress(min(done + chunk_people, customers), customers, "generating customers")
    for w in (records, cookies, persons):
        w.close()
    if not append:  # the catalogue is the same for every chunk
        summary.rows["products"] = write_rows(
            ws.landing_dir / "products" / "products_00001.parquet",
            "products",
            "parquet",
            _products(),
        )
        summary.files_written += 1
    summary.seconds = time.perf_counter() - started
    return summary


def _next_chunk(ws: Workspace) -> int:
    """The first chunk number no landing file uses yet."""
    numbers = [
        int(p.stem.rsplit("_", 1)[1])
        for name in SOURCES
        if name != "products"
        for p in (ws.landing_dir / name).glob(f"{name}_*.*")
        if p.stem.rsplit("_", 1)[1].isdigit()
    ]
    if not numbers:
        raise ValueError("--append adds to a generated workspace; run cdp generate first")
    return max(numbers)


def _persons_columns(people) -> dict[str, list]:
    from cdp.generate.vocab import CITIES, STREET_TYPES

    cols: dict[str, list] = {
        k: []
        for k in (
            "person_id",
            "household_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "phone",
            "street",
            "city",
            "zip",
            "state",
        )
    }
    for p in people:
        a = p.address
        cols["person_id"].append(p.person_id)
        cols["household_id"].append(p.household_id)
        cols["first_name"].append(p.first_name)
        cols["last_name"].append(p.last_name)
        cols["birth_date"].append(p.birth_date)
        cols["email"].append(p.email)
        cols["phone"].append(p.mobile)
        cols["street"].append(f"{a.number} {a.street} {STREET_TYPES[a.street_type][0]}")
        cols["city"].append(CITIES[a.city][0])
        cols["zip"].append(a.zip)
        cols["state"].append(CITIES[a.city][1])
    return cols


def _products() -> dict[str, list]:
    skus = [f"SKU{i:05d}" for i in range(N_PRODUCTS)]
    return {
        "sku": skus,
        "name": [
            f"{PRODUCT_CATEGORIES[i % len(PRODUCT_CATEGORIES)].title()} item {i}"
            for i in range(N_PRODUCTS)
        ],
        "category": [PRODUCT_CATEGORIES[i % len(PRODUCT_CATEGORIES)] for i in range(N_PRODUCTS)],
        "price": [_price(s) for s in skus],
    }


__all__ = ["GenerateSummary", "NoiseRates", "generate"]
