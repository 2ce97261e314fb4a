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
        out += _scale(results["scale"])
    if "engines" in results:
        from bench.engines import report

        out += report(results["engines"])
    return "\n".join(out) + "\n"


def _scale(sc: dict) -> list[str]:
    st = sc["stages"]
    out = ["", f"### Scale run: {sc['customers']:,} customers", ""]
    if "generate" in st:
        g = st["generate"]
        out.append(
            f"`cdp generate`: {g['rows']:,} rows in {g['seconds']:.0f} s "
            f"(peak {g['peak_rss_mb']:,} MB), not part of the run."
        )
    run = st.get("run")
    if not run:
        return out
    out += [
        "",
        f"`cdp run` end to end, every stage included: **{run['seconds'] / 60:.1f} min**, "
        f"peak memory **{run['peak_rss_mb'] / 1024:.1f} GB** (the process tree), "
        f"{run['rows']:,} raw rows ({run['rows_per_min']:,} rows/min). Per stage (Dagster's "
        "step statistics of that run):",
        "",
        "| stage | seconds | share |",
        "|---|---:|---:|",
    ]
    total = sum(run["stages"].values()) or 1
    for name, secs in run["stages"].items():
        out.append(f"| {name} | {secs:.1f} | {secs / total:.0%} |")
    rows = []
    if "rerun" in st:
        r = st["rerun"]
        rows.append(
            f"| rerun, no new file | {r['seconds']:.1f} | {r['seconds'] / run['seconds']:.1%} | "
            f"{' '.join(r['output'])} |"
        )
    if "increment" in st:
        i = st["increment"]
        rows.append(
            f"| 1% new people ({i['customers_added']:,}) as new files | {i['seconds']:.1f} | "
            f"{i['seconds'] / run['seconds']:.1%} | {i['earlier_records_with_a_new_id']:,} of "
            f"{i.get('earlier_records_kept', i.get('records_before', 0)):,} earlier person "
            "records got a new unified id |"
        )
    if "edits" in st:
        e = st["edits"]
        rows.append(
            f"| then 1% of CRM contacts ({e['contacts_moved']:,}) sent again with another "
            f"street | {e['seconds']:.1f} | {e['seconds'] / run['seconds']:.1%} | "
            f"{e['person_records_with_another_id']:,} person records changed person (a "
            "move may rightly split or join one) |"
        )
    if rows:
        out += [
            "",
            "| the run after | seconds | of the full run | note |",
            "|---|---:|---:|---|",
            *rows,
        ]
    for key, label in (("profile", "in process, profile store"), ("api", "`GET /api/profiles`")):
        if key in st:
            p = st[key]
            cmd = (
                f"; the whole `cdp profile` command {p['command_seconds']:.2f} s"
                if "command_seconds" in p
                else ""
            )
            out.append(
                f"\nLookups ({label}): p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
                f"max {p['max_ms']:.0f} ms over {p['lookups']:,} random emails, phones and "
                f"ids ({p['found']:,} found){cmd}."
            )
    return out


def write_chart(results: dict, path: Path) -> bool:
    """Seconds per stage at both sizes as a PNG (altair, rendered offline by vl-convert)."""
    try:
        import altair as alt
        import vl_convert
    except ImportError:  # the dev extra is not installed
        return False
    # The accuracy part times its stages one by one under their own names; they are
    # shown under the names of the stages of a `cdp run`, in the order of the flow.
    same = {"ingest": "ingestion", "marts": "insights and segments"}
    flow = [
        "ingestion",
        "harmonise",
        "identity",
        "insights and segments",
        "activation",
        "catalog and profile store",
    ]
    rows = []
    acc = results.get("accuracy", {})
    for name, s in acc.get("stages", {}).items():
        if name not in ("generate", "baseline"):
            rows.append(
                {
                    "size": f"{acc['customers']:,} (stage by stage)",
                    "stage": same.get(name, name),
                    "seconds": s["seconds"],
                }
            )
    sc = results.get("scale", {})
    for name, secs in sc.get("stages", {}).get("run", {}).get("stages", {}).items():
        rows.append({"size": f"{sc['customers']:,} (one cdp run)", "stage": name, "seconds": secs})
    if not rows:
        return False
    for r in rows:
        r["step"] = flow.index(r["stage"]) if r["stage"] in flow else len(flow)
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            y=alt.Y("size:N", title="customers"),
            x=alt.X("sum(seconds):Q", title="seconds"),
            color=alt.Color("stage:N", sort=flow),
            order=alt.Order("step:Q"),
            tooltip=["stage:N", "seconds:Q"],
        )
        .properties(title="Time per stage", width=520, height=120)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=1.5))
    return True


def write_report(results: dict, path: Path) -> None:
    head = path.read_text(encoding="utf-8").split(MARK)[0] if path.exists() else "# Benchmarks\n\n"
    body = render(results)
    if write_chart(results, path.parent / "docs" / "img" / "bench-stages.png"):
        body += "\n![Time per stage, per size measured](docs/img/bench-stages.png)\n"
    path.write_text(head.rstrip() + "\n\n" + body, encoding="utf-8")
