"""`make bench`: every stage at scale, in its own process, timed and memory-sampled.

Two workspaces under .bench/:
- accuracy (BENCH_CUSTOMERS, default 100,000): generate, ingest, harmonise, identity,
  plain Splink on the same records, marts; then pairwise scores against ground truth;
- public: FEBRL 3, FEBRL 4 and the pseudopeople census (bench/public.py), each through
  `cdp init` + source YAML + `cdp run` on default settings, beside plain Splink;
- scale (BENCH_SCALE_CUSTOMERS, default 1,000,000; 0 skips it): `cdp run` end to end,
  a rerun with nothing new, 1% new files, profile and API lookups (bench/scale.py);
- engines (BENCH_ENGINE_CUSTOMERS, default 2,000): `cdp run` of one workspace on DuckDB
  and on Spark in local mode, side by side (bench/engines.py).
Results go to BENCHMARKS.md (the measured section) and bench/results.json, stage by
stage; BENCH_RESUME=1 continues an interrupted run from the stages already measured.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.monitor import measure

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"


def run_stage(stage: str, ws: Path, *args: str) -> dict:
    cmd = [sys.executable, "-m", "bench.stages", stage, str(ws), *args]
    print(f"[bench] {stage:<10} {ws.name} ...", flush=True)
    # What the stage before wrote (the generated data: gigabytes at 1M) is flushed first,
    # so its writeback is not timed as the early steps of this stage: a slower full run
    # would flatter every ratio to it.
    os.sync()
    m = measure(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if m.returncode != 0:
        print(m.output[-6000:])
        raise SystemExit(f"[bench] stage {stage} failed with exit code {m.returncode}")
    stats = json.loads(m.output.strip().splitlines()[-1])
    rows = stats.get("rows") or 0
    stats.update(
        seconds=round(m.seconds, 2),
        peak_rss_mb=round(m.peak_rss_mb),
        rows_per_min=round(rows / m.seconds * 60) if rows else None,
    )
    print(
        f"[bench] {stage:<10} {m.seconds:8.1f}s  peak {m.peak_rss_mb:8.0f} MB  "
        f"{stats['rows_per_min'] or '-':>12} rows/min",
        flush=True,
    )
    return stats


def main() -> None:
    customers = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
    scale = int(os.environ.get("BENCH_SCALE_CUSTOMERS", "1000000"))
    # BENCH_RESUME=1 keeps the stages already measured in bench/results.json (same sizes).
    resume = os.environ.get("BENCH_RESUME") == "1"
    # BENCH_PARTS=scale (comma-separated: accuracy, public, scale, engines) measures only those.
    parts = set(os.environ.get("BENCH_PARTS", "accuracy,public,scale,engines").split(","))
    from bench.compare import score_workspace

    results_file = ROOT / "bench" / "results.json"
    results: dict = json.loads(results_file.read_text()) if resume and results_file.exists() else {}
    results.update(
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
    )

    def save() -> None:
        results_file.write_text(json.dumps(results, indent=2, default=str) + "\n")

    def run_all(part: str, n: int, stages: tuple[str, ...]) -> None:
        if results.get(part, {}).get("customers") != n:
            results[part] = {"customers": n, "stages": {}}
        done = results[part]["stages"]
        ws = BENCH_DIR / f"{part}_{n}"
        for stage in stages:
            if stage in done:
                continue
            done[stage] = run_stage(stage, ws, *([str(n)] if stage == "generate" else []))
            save()

    if "accuracy" in parts:
        run_all(
            "accuracy",
            customers,
            ("generate", "ingest", "harmonise", "identity", "baseline", "marts"),
        )
        results["accuracy"]["scores"] = score_workspace(BENCH_DIR / f"accuracy_{customers}")
        save()
    from bench.public import run_all as run_public

    if "public" in parts and not (resume and results.get("public")):
        results["public"] = run_public(BENCH_DIR)
        save()
    if scale and "scale" in parts:
        from bench.scale import run_scale

        run_scale(BENCH_DIR, scale, results, save)
    if "engines" in parts:
        from bench.engines import run_engines

        run_engines(BENCH_DIR, int(os.environ.get("BENCH_ENGINE_CUSTOMERS", "2000")), results, save)
    if "scores" not in results.get("accuracy", {}):
        print(f"[bench] partial results in {results_file}; BENCHMARKS.md is written by a full run")
        return
    from bench.report import write_report

    write_report(results, ROOT / "BENCHMARKS.md")
    print(f"[bench] wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
