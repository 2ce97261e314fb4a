"""`make bench`, part `engines`: the same generated workspace through `cdp run` on DuckDB
and on Spark in local mode (cdp.yml `engine`, here through CDP_ENGINE), each timed in its
own process, with the whole process tree's peak memory (Spark's JVM included).

BENCH_ENGINE_CUSTOMERS sets the size (default 2,000). The part needs the Spark extra
(`make bench` installs it); without pyspark it stops before generating anything, rather
than measuring DuckDB alone.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.monitor import measure

CDP = str(Path(sys.executable).parent / "cdp")


def _run(ws: Path, engine: str) -> dict:
    print(f"[bench] cdp run   {engine:<7} {ws.name} ...", flush=True)
    m = measure([CDP, "run", "--workspace", str(ws)], env={**os.environ, "CDP_ENGINE": engine})
    if m.returncode != 0:
        print(m.output[-4000:])
        raise SystemExit(f"[bench] cdp run on {engine} failed with exit code {m.returncode}")
    print(
        f"[bench] cdp run   {engine:<7} {m.seconds:8.1f}s  peak {m.peak_rss_mb:8.0f} MB", flush=True
    )
    return {"seconds": round(m.seconds, 1), "peak_rss_mb": round(m.peak_rss_mb)}


def run_engines(bench_dir: Path, customers: int, results: dict, save) -> None:
    """Both engines on one generated workspace (copied, so each starts from nothing)."""
    from cdp.generate import generate
    from cdp.workspace import resolve_workspace

    if importlib.util.find_spec("pyspark") is None:
        raise SystemExit(
            "[bench] engines: pyspark is not installed; `make spark` adds the Spark extra "
            "(or leave the part out: BENCH_PARTS without engines)"
        )
    base = bench_dir / f"engines_{customers}"
    shutil.rmtree(base, ignore_errors=True)
    subprocess.run([CDP, "init", str(base / "duckdb")], check=True, capture_output=True)
    summary = generate(resolve_workspace(base / "duckdb"), customers=customers, seed=42)
    shutil.copytree(base / "duckdb", base / "spark")
    runs = {engine: _run(base / engine, engine) for engine in ("duckdb", "spark")}
    results["engines"] = {
        "customers": customers,
        "rows": sum(summary.rows.values()),
        "master": os.environ.get("CDP_SPARK_MASTER", "local[*]"),
        "runs": runs,
    }
    save()


def report(eng: dict) -> list[str]:
    """The engines section of BENCHMARKS.md."""
    out = [
        "",
        f"### Engines: the same workspace on DuckDB and on Spark ({eng['customers']:,} customers, "
        f"{eng['rows']:,} landed rows)",
        "",
        "`cdp run` from an empty lake, one process each; Spark in local mode "
        f"(`{eng['master']}`), its JVM started by the run (docs/scale-out.md).",
        "",
        "| engine | seconds | peak memory (MB) |",
        "|---|---:|---:|",
    ]
    for engine, r in eng["runs"].items():
        out.append(f"| {engine} | {r['seconds']:.1f} | {r['peak_rss_mb']:,} |")
    if "spark" not in eng["runs"]:  # results saved before the part required the extra
        out += ["", "Spark was not measured: the Spark extra was not installed."]
    return out
