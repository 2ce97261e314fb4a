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
    for variant, pub in results.get("public", {}).items():
        fields = "given name, surname, birth date, street and postcode" + (
            ", and the social security number as a national id" if pub["national_id"] else ""
        )
        out += [
            "",
            f"### Public data: FEBRL dataset 3, {variant} ({pub['records']:,} records, up to "
            "five repeats per person, no households)",
            "",
            f"Compared on {fields}; no email or phone. Plain Splink took "
            f"{pub['baseline_seconds']:.1f} s for all three thresholds.",
            "",
            *_scores_table(pub),
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
