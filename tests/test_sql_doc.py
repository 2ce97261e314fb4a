"""Every query of docs/sql.md runs through `cdp sql` (the sandboxed, read-only catalog)
on the demo run and returns rows: the worked examples stay true as the model changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdp.cli.main import app

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "sql.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_a_query_for_each_topic():
    text = DOC.read_text()
    for heading in (
        "## One customer's journey across sources",
        "## Revenue by segment and by campaign",
        "## Consent coverage",
        "## Identity statistics",
        "## Who entered a segment this week",
    ):
        assert heading in text, heading
    assert len(QUERIES) >= 10


@pytest.mark.parametrize("query", QUERIES, ids=[f"query{i + 1}" for i in range(len(QUERIES))])
def test_each_query_runs_and_returns_rows(ran, query):
    ws = ran[0]
    result = CliRunner().invoke(app, ["sql", query, "--format", "json", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows, f"no rows from:\n{query}"
