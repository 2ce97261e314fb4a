"""What `cdp run` shows while it works: one live line per stage, and the warnings by kind.

A stage's line has a bar over the assets it materialises (each dbt model counts), the
rows it handled and its time. Nothing else reaches the console: no Dagster event lines,
no dbt log, no third-party chatter; `--verbose` brings the full log back.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

STAGES = ("ingest", "harmonise", "identity", "insights & segments", "activation", "publish")


def stage_of(step: str) -> str:
    if step.startswith("raw__"):
        return "ingest"
    if step == "dbt_harmonise":
        return "harmonise"
    if step == "identity_resolution":
        return "identity"
    if step == "dbt_marts":
        return "insights & segments"
    if step.startswith("activation__"):
        return "activation"
    return "publish"


def _rows(meta: dict) -> int:
    for key in ("rows_in", "dagster/row_count", "records", "rows"):
        value = meta.get(key)
        if value is not None:
            v = getattr(value, "value", value)
            if isinstance(v, int | float):
                return int(v)
    return 0


class RunView:
    """Feeds a rich Progress from Dagster's events (see dagster_project.run)."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:>14}"),
            TextColumn("{task.fields[clock]:>8}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.rows: Counter = Counter()
        self.started: dict[str, float] = {}
        self.running: Counter = Counter()

    def __enter__(self) -> RunView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def plan(self, sizes: dict[str, int]) -> None:
        totals: Counter = Counter()
        for step, n in sizes.items():
            totals[stage_of(step)] += n
        for stage in STAGES:
            if totals[stage]:
                self.tasks[stage] = self.progress.add_task(
                    stage, total=totals[stage], rows="", clock="", start=False
                )

    def _update(self, stage: str, advance: int = 0) -> None:
        task = self.tasks.get(stage)
        if task is None:
            return
        rows = f"{self.rows[stage]:,} rows" if self.rows[stage] else ""
        began = self.started.get(stage)
        clock = f"{time.monotonic() - began:.1f}s" if began is not None else ""
        self.progress.update(task, advance=advance, rows=rows, clock=clock)

    def event(self, event) -> None:
        kind = event.event_type_value
        step = event.step_key or ""
        stage = stage_of(step)
        if kind == "STEP_START":
            self.started.setdefault(stage, time.monotonic())
            self.running[stage] += 1
            if stage in self.tasks:
                self.progress.start_task(self.tasks[stage])
            self._update(stage)
        elif kind == "ASSET_MATERIALIZATION":
            meta = event.materialization.metadata
            if stage != "harmonise" or "dagster/row_count" in meta:
                self.rows[stage] += _rows(meta)
            self._update(stage, advance=1)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self.running[stage] -= 1
            self._update(stage)
            if kind == "STEP_FAILURE":
                self.progress.console.print(f"[red]failed:[/] {step}")


# Warnings of the libraries about themselves, not about the data: kept for --verbose.
LIBRARY_NOISE = ("Logging an `AssetObservation` instead of an `AssetCheckResult`",)


def summarise_warnings(warnings: list[tuple[str, str]], limit: int = 4) -> list[str]:
    """One line per kind of warning, with how many there were: `3 x ...`. Numbers are
    folded, so "12 rows" and "7 rows" are one kind."""
    kinds: Counter = Counter()
    example: dict[str, tuple[str, str]] = {}
    for step, message in warnings:
        if message.startswith(LIBRARY_NOISE):
            continue
        text = message.strip().splitlines()[0] if message.strip() else ""
        kind = re.sub(r"\d[\d,.]*", "#", text)
        kinds[kind] += 1
        example.setdefault(kind, (step, text))
    lines = []
    for kind, n in kinds.most_common(limit):
        step, text = example[kind]
        lines.append(f"{n} x {text}" + (f"  ({step})" if step else ""))
    if len(kinds) > limit:
        lines.append(f"... and {len(kinds) - limit} more kind(s); `cdp run --verbose` shows all")
    return lines
