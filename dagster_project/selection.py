"""Which assets a run of new landing files needs: their sources' ingestion and everything
downstream of it, down to single dbt models (`cdp run` and the landing sensor alike)."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def after_sources(graph, sources: Iterable[str]) -> list[dg.AssetKey]:
    """The raw assets of `sources` and every asset downstream of them in `graph`."""
    raw = [dg.AssetKey(["raw", s]) for s in sources]
    return sorted(dg.AssetSelection.assets(*raw).downstream().resolve(graph))
