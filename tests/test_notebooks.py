"""The analyst notebooks run top to bottom on the demo run (fixture `ran`): jupytext turns
each percent-format .py into a notebook in memory, nbclient executes it in a fresh
kernel; any error fails, and so does a chart without rows (CDP_NOTEBOOK_STRICT=1). Every
chart is saved as PNG into a temporary folder and must be a real picture."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.takes(20)]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED_CHARTS = {
    "01_sources_and_quality.py": {
        "rows_per_source",
        "quarantine_reasons",
        "field_fill_rates",
        "parse_failures",
    },
    "02_identity_review.py": {
        "cluster_sizes",
        "match_weights",
        "waterfalls",
        "blocking_sizes",
        "accuracy",
    },
    "03_customers_and_segments.py": {
        "rfm_grid",
        "ltv_distribution",
        "segment_overlaps",
        "churn_risk",
        "campaign_attribution",
    },
}


def run_notebook(path: Path, workspace: Path, charts: Path, monkeypatch) -> None:
    import jupytext
    from nbclient import NotebookClient

    monkeypatch.setenv("CDP_WORKSPACE", str(workspace))
    monkeypatch.setenv("CDP_CHART_DIR", str(charts))
    monkeypatch.setenv("CDP_NOTEBOOK_STRICT", "1")
    notebook = jupytext.reads(path.read_text(), fmt="py:percent")
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # imports helpers.py from there
    ).execute()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_every_notebook_is_tested():
    assert {p.name for p in NOTEBOOKS.glob("[0-9]*.py")} == set(EXPECTED_CHARTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_CHARTS))
def test_notebook_runs_and_draws_its_charts(ran, name, tmp_path, monkeypatch):
    ws = ran[0]
    charts = tmp_path / "charts"
    run_notebook(NOTEBOOKS / name, ws.root, charts, monkeypatch)
    drawn = {p.stem for p in charts.glob("*.png")}
    assert drawn == EXPECTED_CHARTS[name]
    for png in charts.glob("*.png"):
        width, height = _png_size(png)
        assert width > 200 and height > 100, (png.name, width, height)
        assert png.stat().st_size > 5_000, png.name  # more than an empty frame
