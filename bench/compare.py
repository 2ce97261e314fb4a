"""Plain Splink against this project, on the same records, scored on ground truth."""

from __future__ import annotations

import json
import shutil
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.identity.baseline import run_baseline
from cdp.identity.evaluate import anonymous_accuracy, pairwise_scores
from cdp.identity.prepare import build_records, connect_inputs


def run_baseline_to_files(ws) -> dict:
    """The baseline stage: build the same input records, run plain Splink, save clusters."""
    started = time.perf_counter()
    records = build_records(connect_inputs(ws))
    work = ws.tmp_dir / "baseline"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result = run_baseline(records, str(work))
    out = ws.state_dir / "bench"
    out.mkdir(parents=True, exist_ok=True)
    for threshold, table in result.clusters.items():
        pq.write_table(table, out / f"baseline_{threshold}.parquet")
    meta = {
        "rows": records.num_rows,
        "splink_seconds": result.seconds,
        "seconds_total": time.perf_counter() - started,
    }
    (out / "baseline.json").write_text(json.dumps(meta))
    return meta


def _as_links(clusters: pa.Table) -> pa.Table:
    ids = clusters.column("unique_id").to_pylist()
    return pa.table(
        {
            "source_name": [u.split(":", 1)[0] for u in ids],
            "source_record_id": [u.split(":", 1)[1] for u in ids],
            "unified_individual_id": pa.array(
                [str(c) for c in clusters.column("cluster_id").to_pylist()]
            ),
        }
    )


def score_workspace(ws_path) -> dict:
    from cdp.workspace import Workspace

    ws = Workspace(ws_path)
    truth = pq.read_table(ws.ground_truth_dir / "records.parquet")
    cookies = pq.read_table(ws.ground_truth_dir / "anonymous_ids.parquet")
    links = pq.read_table(ws.identity_dir / "unified_link_individual.parquet")
    persons = links.filter(pc.equal(links["record_kind"], "person"))
    methods = {"this project": pairwise_scores(persons, truth)}
    ours_anon = anonymous_accuracy(links, truth, cookies)
    bench = ws.state_dir / "bench"
    for f in sorted(bench.glob("baseline_*.parquet")):
        threshold = f.stem.split("_", 1)[1]
        methods[f"plain Splink, connected components at {threshold}"] = pairwise_scores(
            _as_links(pq.read_table(f)), truth
        )
    from bench.ceiling import recall_ceiling

    ceiling = recall_ceiling(ws)
    notes = [
        f"Logged-in anonymous visitors linked to the right person: {ours_anon['linked_right']:,} of "
        f"{ours_anon['logged_in']:,} ({ours_anon['accuracy']:.2%}).",
        f"Recall ceiling of the data (bench/ceiling.py: an oracle linking each person's records "
        f"that agree, exactly or nearly, on two or more fields): {ceiling:.4f}.",
    ]
    return {"methods": methods, "anonymous": ours_anon, "recall_ceiling": ceiling, "notes": notes}
