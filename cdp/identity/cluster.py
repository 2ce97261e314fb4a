"""Clustering that does not over-merge.

Plain connected components lets one weak link, or a chain of them, join different
people into a giant cluster. Here records are merged in order of evidence, strongest
first, and a merge happens only when:
- the joined group stays within `max_cluster_size`;
- it would not hold conflicting facts: two different strong identifiers of one type (two
  loyalty ids) or, with the family guards on, birth dates more than a typo apart or first
  names that are neither nicknames, initials nor typos of each other (nor swapped with
  the surname). This keeps household members (same address, surname and sometimes
  email) apart;
- two groups that already have several members are joined by at least `min_cross_edges`
  edges, or by one edge at `strong_match_threshold`.
Match-rule links (cdp.identity.match_rules) are applied first and bypass the support
rule, but not the other guards: a shared family mailbox does not merge a family.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from rapidfuzz.distance import OSA


@dataclass(slots=True)
class Edge:
    left: int
    right: int
    probability: float
    stage: str  # "deterministic:<type>" | "probabilistic"


@dataclass(slots=True)  # one per record touched: at a million records, slots matter
class Group:
    members: list[int]
    ids: dict[str, set[str]] = field(default_factory=dict)  # strong ids by type
    dates: set[str] = field(default_factory=set)
    names: set[tuple[str, ...]] = field(default_factory=set)  # first-name variant sets
    surnames: set[tuple[str, ...]] = field(default_factory=set)  # for swapped names


@lru_cache(maxsize=200_000)
def names_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """`a` and `b` are (name, *related names). Compatible: one a nickname of the other, an
    initial of the other, one typo apart, or one a typo of the other's nickname.
    Patricia / Patrick and Ryan / Bryant are two edits apart: in one household they are
    two people."""
    x, y = a[0], b[0]
    if x in b or y in a:
        return True
    if _labels_differ(x, y):
        return False
    shorter = min(len(x), len(y))
    if shorter == 1 and (x.startswith(y) or y.startswith(x)):
        return True
    if shorter < 3:
        return False
    edits = _edits(x, y)
    # Two typos are allowed in a longer name that keeps its first and last letter.
    if edits <= 1 or (edits == 2 and shorter >= 5 and x[0] == y[0] and x[-1] == y[-1]):
        return True
    # A misspelt nickname: Imckey for Mickey, a nickname of Michael.
    return _near_any(x, b[1:]) or _near_any(y, a[1:])


def _labels_differ(x: str, y: str) -> bool:
    """Two names that both hold digits, different ones, are labels ("Other0", "Other1"),
    not a typo; a digit in one name only may be a scanning error (Michel1e)."""
    dx = "".join(ch for ch in x if ch.isdigit())
    dy = "".join(ch for ch in y if ch.isdigit())
    return bool(dx and dy and dx != dy)


def _near_any(name: str, others: tuple[str, ...]) -> bool:
    return any(
        len(o) >= 3 and abs(len(o) - len(name)) <= 1 and _edits(name, o) <= 1 for o in others
    )


def name_sets_compatible(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    """Every first name of one group matches some first name of the other. A group may
    hold Christopher and Chris; a record spelt Christlpher still belongs to it."""

    def covered(xs, ys) -> bool:
        return all(any(names_compatible(x, y) for y in ys) for x in xs)

    return covered(b, a) or covered(a, b)


@lru_cache(maxsize=500_000)
def dates_conflict(a: str, b: str, max_edits: int) -> bool:
    """More than `max_edits` typos apart. Equal-length ISO dates are screened by position
    first: a transposition fixes two mismatched positions, so 2*max_edits+2 mismatches
    always mean a conflict, and few mismatches never do."""
    if a == b:
        return False
    if len(a) == len(b):
        mismatches = sum(x != y for x, y in zip(a, b, strict=True))
        if mismatches <= max_edits:
            return False
        if mismatches >= 2 * max_edits + 2:
            return True
    return _edits(a, b) > max_edits


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: edits, with a swap of neighbours as one."""
    return OSA.distance(a, b)


def _swapped(a: Group, b: Group) -> bool:
    """One side's first names are the other's surnames, and the other way round."""
    return (
        bool(a.surnames and b.surnames)
        and name_sets_compatible(a.names, b.surnames)
        and name_sets_compatible(a.surnames, b.names)
    )


def _one_date(a: Group, b: Group) -> bool:
    """Both groups hold one and the same birth date."""
    return len(a.dates) == 1 and a.dates == b.dates


def _sets_spelt_alike(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> bool:
    """Every first name of one group is at most two edits from one of the other's. Within
    a family only twins share a birth date, so with one birth date a badly misspelt name
    (Maahy for Mary) is likelier than a twin with a name two letters away."""

    def alike(x: str, y: str) -> bool:
        return min(len(x), len(y)) >= 4 and not _labels_differ(x, y) and _edits(x, y) <= 2

    return all(any(alike(x[0], y[0]) for y in b) for x in a) or all(
        any(alike(y[0], x[0]) for x in a) for y in b
    )


class GuardedClusterer:
    def __init__(
        self,
        n: int,
        birth_dates: list[str | None],
        first_names: list[tuple[str, ...] | None],
        strong: dict[int, dict[str, set[str]]],
        *,
        max_size: int,
        min_cross_edges: int,
        strong_threshold: float,
        date_conflict_edits: int,
        last_names: list[tuple[str, ...] | None] | None = None,
        family_guards: bool = True,
    ):
        self.parent = list(range(n))
        # Off for data with no families: unrelated first names and far-apart birth dates
        # are then data-entry errors, not relatives.
        self.family_guards = family_guards
        self.last_names = last_names
        self.groups: dict[int, Group] = {}
        self.max_size = max_size
        self.min_cross = min_cross_edges
        self.strong_threshold = strong_threshold
        self.date_edits = date_conflict_edits
        self.birth_dates = birth_dates
        self.first_names = first_names
        self.strong = strong
        self.refused: list[tuple[Edge, str]] = []

    def group(self, i: int) -> Group:
        g = self.groups.get(i)
        if g is None:
            g = Group(members=[i], ids={k: set(v) for k, v in self.strong.get(i, {}).items()})
            if self.birth_dates[i]:
                g.dates.add(self.birth_dates[i])
            if self.first_names[i]:
                g.names.add(self.first_names[i])
            if self.last_names and self.last_names[i]:
                g.surnames.add(self.last_names[i])
            self.groups[i] = g
        return g

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def conflict(self, a: Group, b: Group) -> str | None:
        if len(a.members) + len(b.members) > self.max_size:
            return "size"
        for t, vals in a.ids.items():
            other = b.ids.get(t)
            if other and not (vals & other):
                return f"different {t}"
        if self.family_guards:
            for da in a.dates:
                for db in b.dates:
                    if dates_conflict(da, db, self.date_edits):
                        return "different birth dates"
        # First and last name written the wrong way round (Hassall Jacob) is one person.
        if (
            self.family_guards
            and a.names
            and b.names
            and not name_sets_compatible(a.names, b.names)
            and not _swapped(a, b)
            and not (_one_date(a, b) and _sets_spelt_alike(a.names, b.names))
        ):
            return "different first names"
        return None

    def union(self, ra: int, rb: int) -> int:
        a, b = self.group(ra), self.group(rb)
        if len(a.members) < len(b.members):
            ra, rb, a, b = rb, ra, b, a
        self.parent[rb] = ra
        a.members += b.members
        for t, vals in b.ids.items():
            a.ids.setdefault(t, set()).update(vals)
        a.dates |= b.dates
        a.names |= b.names
        a.surnames |= b.surnames
        del self.groups[rb]
        return ra

    def add_deterministic(self, edges: list[Edge]) -> list[Edge]:
        """Match-rule links, in order: no support needed, every other guard applies."""
        used = []
        for e in edges:
            ra, rb = self.find(e.left), self.find(e.right)
            if ra == rb:
                continue
            reason = self.conflict(self.group(ra), self.group(rb))
            if reason:
                self.refused.append((e, reason))
                continue
            self.union(ra, rb)
            used.append(e)
        return used

    def add_probabilistic(self, left, right, probability) -> list[int]:
        """Pairs as parallel sequences, merged strongest first. Returns the positions of
        the pairs that joined groups (or lie inside one); refused pairs are recorded in
        `refused` with the guard's reason."""
        p = np.asarray(probability, dtype=np.float64)
        lo, hi = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        order = np.lexsort((hi, lo, -p)).tolist()
        L, R, P = lo.tolist(), hi.tolist(), p.tolist()
        used: list[int] = []
        pending: dict[tuple[int, int], list[int]] = defaultdict(list)
        for k in order:
            ra, rb = self.find(L[k]), self.find(R[k])
            if ra == rb:
                used.append(k)  # evidence inside a group already joined
                continue
            a, b = self.group(ra), self.group(rb)
            key = (min(ra, rb), max(ra, rb))
            pending[key].append(k)
            support = len(pending[key])
            both_plural = len(a.members) > 1 and len(b.members) > 1
            if (
                both_plural
                and P[k] < self.strong_threshold
                and support < min(self.min_cross, len(a.members) * len(b.members))
            ):
                continue  # wait for more support between these two groups
            reason = self.conflict(a, b)
            if reason:
                self.refused.append((Edge(L[k], R[k], P[k], "probabilistic"), reason))
                continue
            self.union(ra, rb)
            used += pending.pop(key)
        return used

    def clusters(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            out[self.find(i)].append(i)
        return out
