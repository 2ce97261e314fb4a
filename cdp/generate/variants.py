"""How a system writes a true value down: nicknames, typos, accents, formats."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache, lru_cache

import numpy as np
from unidecode import unidecode

from cdp.generate.noise import NoiseRates
from cdp.generate.people import REFERENCE_DATE, Address
from cdp.generate.vocab import CITIES, STREET_TYPES

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@cache
def _nicknames(first: str) -> tuple[str, ...]:

    return tuple(sorted(n.capitalize() for n in _namer().nicknames_of(first.lower())))


@lru_cache(maxsize=1)
def _namer():
    from nicknames import NickNamer

    return NickNamer()


def typo(rng: np.random.Generator, s: str) -> str:
    if len(s) < 3:
        return s
    i = int(rng.integers(1, len(s)))
    kind = int(rng.integers(3))
    c = LETTERS[int(rng.integers(26))]
    if kind == 0:
        return s[:i] + c + s[i + 1 :]  # substitution
    if kind == 1:
        return s[:i] + s[i + 1 :]  # deletion
    return s[:i] + c + s[i:]  # insertion


def transpose(rng: np.random.Generator, s: str) -> str:
    if len(s) < 3:
        return s
    i = int(rng.integers(0, len(s) - 1))
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def _case_and_accents(rng: np.random.Generator, s: str, noise: NoiseRates) -> str:
    if s != unidecode(s) and rng.random() < noise.drop_accents:
        s = unidecode(s)
    r = rng.random()
    if r < noise.upper_case:
        return s.upper()
    if r < noise.upper_case + noise.lower_case:
        return s.lower()
    return s


def first_name(rng: np.random.Generator, name: str, noise: NoiseRates) -> str:
    if rng.random() < noise.nickname:
        nicks = _nicknames(name)
        if nicks:
            name = nicks[int(rng.integers(len(nicks)))]
    if rng.random() < noise.typo_first_name:
        name = typo(rng, name)
    if rng.random() < noise.transposition:
        name = transpose(rng, name)
    return _case_and_accents(rng, name, noise)


def last_name(rng: np.random.Generator, name: str, noise: NoiseRates) -> str:
    if rng.random() < noise.typo_last_name:
        name = typo(rng, name)
    if rng.random() < noise.transposition:
        name = transpose(rng, name)
    return _case_and_accents(rng, name, noise)


def email(rng: np.random.Generator, address: str, noise: NoiseRates) -> str:
    local, domain = address.split("@", 1)
    if domain in ("gmail.com", "googlemail.com"):
        r = rng.random()
        if r < 0.08:
            local = f"{local}+{('news', 'shop', 'promo')[int(rng.integers(3))]}"
        elif r < 0.14:
            local = local.replace(".", "")
    if rng.random() < noise.typo_email:
        local = typo(rng, local)
    out = f"{local}@{domain}"
    if rng.random() < 0.03:
        out = out.upper() if rng.random() < 0.3 else out.capitalize()
    if rng.random() < 0.02:
        out = f" {out} "
    return out


def phone(rng: np.random.Generator, e164: str) -> str:
    if e164.startswith("+1"):
        a, b, c = e164[2:5], e164[5:8], e164[8:]
        forms = (
            f"+1 {a}-{b}-{c}",
            f"({a}) {b}-{c}",
            f"{a}{b}{c}",
            f"{a}.{b}.{c}",
            f"001 {a} {b} {c}",
            e164,
            f"1-{a}-{b}-{c}",
            f"({a}) {b} {c}",
        )
    elif e164.startswith("+44"):
        n = e164[3:]
        forms = (
            f"+44 {n[:2]} {n[2:6]} {n[6:]}",
            f"0044 {n[:2]} {n[2:6]} {n[6:]}",
            e164,
            f"+44 (0){n}",
        )
    else:
        n = e164[3:]
        forms = (f"+49 {n[:2]} {n[2:]}", f"0049 {n[:2]} {n[2:]}", e164, f"+49-{n[:2]}-{n[2:]}")
    return forms[int(rng.integers(len(forms)))]


def street(rng: np.random.Generator, a: Address, noise: NoiseRates) -> str:
    kind = STREET_TYPES[a.street_type][int(rng.integers(3))]
    name = a.street
    if rng.random() < noise.typo_street:
        name = typo(rng, name)
    line = f"{a.number} {name} {kind}"
    if a.unit:
        sep = (", ", " ", " #")[int(rng.integers(3))]
        unit = a.unit if sep != " #" else a.unit.split()[-1]
        line = f"{line}{sep}{unit}"
    return line.upper() if rng.random() < noise.upper_case else line


def city(a: Address) -> tuple[str, str]:
    return CITIES[a.city][0], CITIES[a.city][1]


def postal_code(rng: np.random.Generator, a: Address) -> str:
    r = rng.random()
    if r < 0.05:
        return f"{a.zip}-{int(rng.integers(0, 9999)):04d}"  # ZIP+4
    if r < 0.07:
        return f" {a.zip}"
    return a.zip


def birth_date(rng: np.random.Generator, d: date, noise: NoiseRates) -> str:
    if rng.random() < noise.odd_date_format:
        return d.strftime(("%m/%d/%Y", "%d.%m.%Y", "%Y%m%d")[int(rng.integers(3))])
    return d.isoformat()


def timestamp(rng: np.random.Generator, stale: bool, not_before: date | None = None) -> datetime:
    """A moment in the past: within the last year, or years back when stale."""
    days = int(rng.integers(400, 3000)) if stale else int(rng.integers(0, 365))
    ts = datetime.combine(REFERENCE_DATE, datetime.min.time()) - timedelta(
        days=days, seconds=int(rng.integers(0, 86400))
    )
    if not_before is not None:
        ts = max(ts, datetime.combine(not_before, datetime.min.time()))
    return ts


def ts_text(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")
