"""Carry unified_individual_id forward between runs.

- Same records, same id. A new record joining a person keeps that person's id.
- Clusters that merge keep the id of the larger previous cluster (then the older id).
- A cluster that splits: its largest part keeps the id, the other parts get new ones.
- A brand-new cluster's id is derived from its smallest member, so two clean runs on the
  same data give the same ids.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass


@dataclass
class HistoryEvent:
    event: str  # created | merged | split | retired
    unified_individual_id: str
    related_id: str | None
    record_count: int


STEM_LENGTH = 16  # "UI" and 14 hex digits


def id_stem(smallest_member: str) -> str:
    """The id a new cluster gets, before any suffix a taken id makes it add: every id
    new_id can give begins with it."""
    digest = hashlib.sha256(smallest_member.encode()).hexdigest()
    return f"UI{digest[: STEM_LENGTH - 2].upper()}"


def new_id(smallest_member: str, taken: set[str]) -> str:
    stem = id_stem(smallest_member)
    candidate = stem
    n = 1
    while candidate in taken:
        candidate = f"{stem}{n}"
        n += 1
    return candidate


def assign_ids(
    clusters: list[list[str]],
    previous: dict[str, str],
    previous_sizes: dict[str, int],
    previous_order: dict[str, int],
    reserved: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], list[HistoryEvent]]:
    """`clusters`: member unique_ids per new cluster. `previous`: unique_id -> old id.

    `previous_order` ranks old ids by age (smaller is older). `reserved`: ids held by
    clusters outside this resolution (a new id must not take one). Returns one id per
    cluster and the history events of this run.
    """
    # Candidate claims: (cluster index, old id, members of the old id that are here).
    claims = []
    for ci, members in enumerate(clusters):
        counts = Counter(previous[m] for m in members if m in previous)
        for old, n in counts.items():
            claims.append((ci, old, n))
    # Best claims first: most shared members, then larger old cluster, then older id.
    claims.sort(
        key=lambda c: (-c[2], -previous_sizes.get(c[1], 0), previous_order.get(c[1], 0), c[1])
    )
    assigned: dict[int, str] = {}
    used: set[str] = set()
    for ci, old, _ in claims:
        if ci in assigned or old in used:
            continue
        assigned[ci] = old
        used.add(old)
    taken = set(previous_sizes) | used | set(reserved)
    ids = []
    events: list[HistoryEvent] = []
    for ci, members in enumerate(clusters):
        uid = assigned.get(ci)
        if uid is None:
            uid = new_id(min(members), taken)
            taken.add(uid)
            olds = {previous[m] for m in members if m in previous}
            if olds:
                for old in sorted(olds):
                    events.append(HistoryEvent("split", old, uid, len(members)))
            else:
                events.append(HistoryEvent("created", uid, None, len(members)))
        else:
            for old in sorted({previous[m] for m in members if m in previous} - {uid}):
                if old not in used:
                    events.append(HistoryEvent("merged", uid, old, len(members)))
        ids.append(uid)
    merged_away = {e.related_id for e in events if e.event == "merged"}
    for old in sorted(set(previous_sizes) - set(ids) - merged_away):
        # An old id that kept no cluster and was not merged away: its records left.
        events.append(HistoryEvent("retired", old, None, 0))
    return ids, events
