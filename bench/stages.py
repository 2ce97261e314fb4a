"""One benchmark stage per process, so peak memory is measured per stage.

`python -m bench.stages <stage> <workspace> [customers]` prints one JSON line of
stage-specific counts as its last line of output.
"""

from __future__ import annotations

import json
import shutil
import sys
import time

from cdp.config.settings import load_settings
from cdp.config.sources import load_sources
from cdp.workspace import resolve_workspace


def stage_generate(ws, customers: int) -> dict:
    from cdp.generate import generate

    summary = generate(ws, customers=customers, seed=42)
    return {"rows": sum(summary.rows.values()), "by_source": summary.rows}


def stage_ingest(ws) -> dict:
    from cdp.ingest import ingest_source

    settings = load_settings(ws.settings_file)
    rows_in = kept = quarantined = 0
    for spec in load_sources(ws.sources_dir):
        r = ingest_source(ws, spec, settings, full_refresh=True)
        rows_in, kept, quarantined = (
            rows_in + r.rows_in,
            kept + r.rows_kept,
            quarantined + r.rows_quarantined,
        )
    return {"rows": rows_in, "rows_kept": kept, "rows_quarantined": quarantined}


def _dbt(ws, select: str) -> dict:
    from cdp.harmonise.dbt_env import prepare, run_dbt

    prepare(ws)
    run_dbt(ws, ["build", "--select", select], target=ws.state_dir / "dbt_bench")
    return {"select": select}


def stage_harmonise(ws) -> dict:
    import duckdb

    out = _dbt(ws, "tag:staging tag:intermediate")
    out["rows"] = duckdb.execute(
        f"select count(*) from read_parquet('{ws.raw_dir}/*/*/*.parquet', union_by_name=true)"
    ).fetchone()[0]
    return out


def stage_identity(ws) -> dict:
    from cdp.identity.resolve import resolve, train

    # Every stage included: a fresh model and no carried-forward state.
    shutil.rmtree(ws.identity_dir, ignore_errors=True)
    ws.identity_model_file.unlink(missing_ok=True)
    ws.identity_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train(ws)
    trained = time.perf_counter() - t0
    result = resolve(ws, run_id="bench")
    return {
        "rows": result.records + result.anonymous_visitors,
        "records": result.records,
        "anonymous_visitors": result.anonymous_visitors,
        "clusters": result.clusters,
        "largest_cluster": result.largest_cluster,
        "train_seconds": trained,
    }


def stage_baseline(ws) -> dict:
    from bench.compare import run_baseline_to_files

    return run_baseline_to_files(ws)


def stage_marts(ws) -> dict:
    return _dbt(ws, "tag:marts")


STAGES = {
    "generate": stage_generate,
    "ingest": stage_ingest,
    "harmonise": stage_harmonise,
    "identity": stage_identity,
    "baseline": stage_baseline,
    "marts": stage_marts,
}


def main() -> None:
    stage, root = sys.argv[1], sys.argv[2]
    ws = resolve_workspace(root, must_exist=False)
    ws.ensure_dirs()
    args = [int(sys.argv[3])] if stage == "generate" else []
    result = STAGES[stage](ws, *args)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
