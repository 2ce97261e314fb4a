"""Render bench results as the measured section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

MARK = "<!-- measured: written by `make bench`, do not edit below -->"


def _stage_table(stages: dict) -> list[str]:
    lines = [
        "| stage | rows | seconds | rows/min | peak memory (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in stages.items():
        rpm = f"{s['rows_per_min']:,}" if s.get("rows_per_min") else "-"
        rows = f"{s['rows']:,}" if s.get("rows") else "-"
        lines.append(f"| {name} | {rows} | {s['seconds']:.1f} | {rpm} | {s['peak_rss_mb']:,} |")
    return lines


def _scores_table(scores: dict) -> list[str]:
    lines = [
        "| method | precision | recall | F1 | clusters | largest cluster (true largest) | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scores["methods"].items():
        secs = f"{s['seconds']:.1f}" if s.get("seconds") is not None else "-"
        lines.append(
            f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | "
            f"{s.get('clusters', '-'):,} | {s['largest_cluster']:,} ({s['true_largest_cluster']}) | {secs} |"
        )
    return lines


def render(results: dict) -> str:
    acc = results["accuracy"]
    out = [
        MARK,
        "",
        f"Measured {results['when']} on {results['machine']}.",
        "",
        f"### Accuracy run: {acc['customers']:,} customers",
        "",
        *_stage_table(acc["stages"]),
        "",
        "Identity resolution scored pairwise against the generator's ground truth "
        "(precision and recall over pairs of records placed together):",
        "",
        *_scores_table(acc["scores"]),
        "",
    ]
    extra = acc["scores"].get("notes") or []
    out += [f"- {n}" for n in extra]
    for pub in results.get("public", {}).values():
        out += [
            "",
            f"### Public data: {pub['description']} ({pub['records']:,} records)",
            "",
            f"`cdp init`, the published file(s) in `landing/`, one source YAML each, `cdp run` on "
            f"default settings: {pub['run_seconds']:.0f} s for the whole run. Plain Splink on the "
            f"same prepared records took {pub['baseline_seconds']:.1f} s for all three thresholds.",
            "",
            *_scores_table(pub),
        ]
        left = pub.get("blocking_left_out") or []
        if left:
            out.append("")
            out += [
                f"- Blocking left out {o['values']:,} value(s) of [{o['rule']}] shared by more than "
                f"{o['cap']:,} records ({o['records']:,} records)."
                for o in left
            ]
    if "scale" in results:
        sc = results["scale"]
        out += [
            "",
            f"### Scale run: {sc['customers']:,} customers",
            "",
            *_stage_table(sc["stages"]),
        ]
    return "\n".join(out) + "\n"


def write_report(results: dict, path: Path) -> None:
    head = path.read_text(encoding="utf-8").split(MARK)[0] if path.exists() else "# Benchmarks\n\n"
    path.write_text(head.rstrip() + "\n\n" + render(results), encoding="utf-8")
