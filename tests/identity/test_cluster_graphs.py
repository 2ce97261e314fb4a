"""Clustering guards as a table of small literal graphs, each with its expected clusters.

Each case: the records' first names and birth dates (None: unknown), match-rule links
(applied first), scored links (id, id, probability), and the clusters every record
must end in, as sets of record numbers. Record numbers are also the union-find indexes.
"""

from __future__ import annotations

import pytest

from cdp.harmonise.normalise import name_variants
from cdp.identity.cluster import Edge, GuardedClusterer

CASES = {
    "strangers chained by fuzzy labels stay apart": dict(
        names=["other0", "other1", "other10", "other11", "other2"],
        dates=["1980-01-01"] * 5,
        scored=[(0, 1, 0.97), (1, 2, 0.97), (2, 3, 0.97), (3, 4, 0.97), (0, 4, 0.96)],
        clusters=[{0}, {1}, {2}, {3}, {4}],
    ),
    "one person's nicknames and typos join": dict(
        names=["robert", "bob", "robret", "rob"],
        dates=["1970-02-03", None, "1970-02-03", "1970-02-03"],
        scored=[(0, 1, 0.95), (0, 2, 0.99), (1, 3, 0.93)],
        clusters=[{0, 1, 2, 3}],
    ),
    "a household: one surname, one home, other first names and birth dates": dict(
        names=["peter", "jana", "eva"],
        dates=["1970-01-01", "1972-03-03", "2001-07-07"],
        scored=[(0, 1, 0.95), (1, 2, 0.95), (0, 2, 0.95)],
        clusters=[{0}, {1}, {2}],
    ),
    "father and son share a name but not a birth date": dict(
        names=["john", "john"],
        dates=["1950-04-04", "1980-09-09"],
        scored=[(0, 1, 0.99)],
        clusters=[{0}, {1}],
    ),
    "a badly misspelt name on the same birth date is one person": dict(
        names=["mary", "maahy"],
        dates=["1949-05-08", "1949-05-08"],
        scored=[(0, 1, 0.999)],
        clusters=[{0, 1}],
    ),
    "the same misspelling on another birth date is kept apart": dict(
        names=["mary", "maahy"],
        dates=["1949-05-08", "1975-05-08"],
        scored=[(0, 1, 0.999)],
        clusters=[{0}, {1}],
    ),
    "two groups need two weak links, not one": dict(
        names=[None] * 4,
        dates=[None] * 4,
        scored=[(0, 1, 0.999), (2, 3, 0.999), (1, 2, 0.85)],
        clusters=[{0, 1}, {2, 3}],
    ),
    "two independent weak links join two groups": dict(
        names=[None] * 4,
        dates=[None] * 4,
        scored=[(0, 1, 0.999), (2, 3, 0.999), (1, 2, 0.85), (0, 3, 0.86)],
        clusters=[{0, 1, 2, 3}],
    ),
    "a match rule joins without support, but not across first names": dict(
        names=["ann", "ann", "peter"],
        dates=[None, None, None],
        rules=[(0, 1), (1, 2)],  # a family mailbox shared by Ann and Peter
        clusters=[{0, 1}, {2}],
    ),
    "a digit in one name only may be a scanning error": dict(
        names=["michelle", "michel1e"],
        dates=["1981-05-27", "1981-05-27"],
        scored=[(0, 1, 0.9999)],
        clusters=[{0, 1}],
    ),
    "first and last name written the wrong way round": dict(
        names=["jacob", "hassall"],
        surnames=["hassall", "jacob"],
        dates=[None, None],
        scored=[(0, 1, 0.99)],
        clusters=[{0, 1}],
    ),
}


def _run(case: dict) -> list[set[int]]:
    n = len(case["names"])
    names = [(x, *name_variants(x)) if x else None for x in case["names"]]
    surnames = case.get("surnames")
    c = GuardedClusterer(
        n,
        case["dates"],
        names,
        {},
        max_size=30,
        min_cross_edges=2,
        strong_threshold=0.9999,
        date_conflict_edits=2,
        last_names=[(s,) for s in surnames] if surnames else None,
    )
    c.add_deterministic([Edge(a, b, 1.0, "rule:test") for a, b in case.get("rules", [])])
    scored = case.get("scored", [])
    if scored:
        c.add_probabilistic(*zip(*scored, strict=True))
    return sorted((set(m) for m in c.clusters().values()), key=min)


@pytest.mark.parametrize("name", list(CASES))
def test_literal_graph(name):
    case = CASES[name]
    assert _run(case) == sorted(case["clusters"], key=min)
