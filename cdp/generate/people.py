"""True people and households: the ground truth the noisy source records are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import numpy as np

from cdp.generate.noise import NoiseRates
from cdp.generate.vocab import (
    CITIES,
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    STREET_NAMES,
    STREET_TYPES,
    SURNAMES,
)

REFERENCE_DATE = date(2026, 6, 30)


@dataclass
class Address:
    number: int
    street: str
    street_type: int  # index into STREET_TYPES
    unit: str | None
    city: int  # index into CITIES
    zip: str
    country: str = "US"


@dataclass
class Person:
    person_id: str
    household_id: str
    gender: str
    first_name: str
    last_name: str
    maiden_name: str | None
    birth_date: date
    email: str
    old_email: str | None
    family_email: str | None
    mobile: str  # E.164
    landline: str | None
    address: Address
    old_address: Address | None
    loyalty_no: str | None
    country: str  # where the phone is from: US, GB or DE


@cache
def _rank_weights(n: int, flatten: float) -> np.ndarray:
    w = 1.0 / (np.arange(1, n + 1) + flatten)
    return np.cumsum(w / w.sum())


def _zipf_index(rng: np.random.Generator, n: int, flatten: float = 6.0) -> int:
    """A skewed pick, index 0 the most common: with 130 names the top one is about 5%."""
    return min(int(np.searchsorted(_rank_weights(n, flatten), rng.random(), side="right")), n - 1)


def _address(rng: np.random.Generator) -> Address:
    city = int(rng.integers(len(CITIES)))
    unit = f"Apt {int(rng.integers(1, 40))}" if rng.random() < 0.25 else None
    return Address(
        number=int(rng.integers(1, 9999)),
        street=STREET_NAMES[_zipf_index(rng, len(STREET_NAMES), 3.0)],
        street_type=int(rng.integers(len(STREET_TYPES))),
        unit=unit,
        city=city,
        zip=CITIES[city][2] + f"{int(rng.integers(0, 100)):02d}",
    )


def _phone(rng: np.random.Generator, country: str, city: int) -> str:
    if country == "GB":
        return f"+4420{int(rng.integers(7000, 8999)):04d}{int(rng.integers(0, 9999)):04d}"
    if country == "DE":
        return f"+4930{int(rng.integers(1000000, 9999999)):07d}"
    area = CITIES[city][3][int(rng.integers(len(CITIES[city][3])))]
    exchange = int(rng.integers(200, 999))
    if exchange == 555:
        exchange = 556
    return f"+1{area}{exchange}{int(rng.integers(0, 9999)):04d}"


def _email_local(rng: np.random.Generator, first: str, last: str, owner: int) -> str:
    """A mailbox belongs to one person: the owner's number keeps common names apart."""
    from unidecode import unidecode

    f = unidecode(first).lower().replace(" ", "").replace("'", "")
    s = unidecode(last).lower().replace(" ", "").replace("'", "")
    style = int(rng.integers(6))
    return (
        f"{f}.{s}{owner}",
        f"{f}{s}{owner}",
        f"{f[0]}{s}{owner}",
        f"{f}_{s}{owner}",
        f"{s}.{f}{owner}",
        f"{f}.{s}.{owner}",
    )[style]


def _email(rng: np.random.Generator, first: str, last: str, owner: int) -> str:
    from cdp.generate.vocab import EMAIL_DOMAINS

    domain = EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]
    return f"{_email_local(rng, first, last, owner)}@{domain}"


def make_people(
    rng: np.random.Generator, start: int, count: int, noise: NoiseRates
) -> list[Person]:
    """`count` people with ids from `start`, grouped into households."""
    people: list[Person] = []
    i = start
    end = start + count
    while i < end:
        size = 1
        while size < 5 and rng.random() < noise.household_extra_member:
            size += 1
        size = min(size, end - i)
        household_id = f"H{i:08d}"
        surname = SURNAMES[_zipf_index(rng, len(SURNAMES), 12.0)]
        address = _address(rng)
        old_address = _address(rng) if rng.random() < noise.moved_house else None
        country = "US"
        if rng.random() < noise.abroad:
            country = "GB" if rng.random() < 0.5 else "DE"
        landline = (
            _phone(rng, country, address.city) if rng.random() < noise.shared_landline else None
        )
        family_email = (
            f"the{surname.lower().replace(' ', '').replace(chr(39), '')}s{i}@gmail.com"
            if size > 1 and rng.random() < noise.shared_family_email
            else None
        )
        prev_dob: date | None = None
        for _ in range(size):
            gender = "F" if rng.random() < 0.5 else "M"
            names = FIRST_NAMES_F if gender == "F" else FIRST_NAMES_M
            first = names[_zipf_index(rng, len(names))]
            if prev_dob is not None and rng.random() < noise.twin:
                dob = prev_dob
            else:
                dob = REFERENCE_DATE - timedelta(days=int(rng.integers(18 * 365, 88 * 365)))
            prev_dob = dob
            maiden = None
            if gender == "F" and rng.random() < noise.married_name_change:
                maiden = SURNAMES[_zipf_index(rng, len(SURNAMES), 12.0)]
                if maiden == surname:
                    maiden = None
            email = _email(rng, first, surname, i)
            old_email = (
                _email(rng, first, maiden or surname, i + 7_000_000)
                if rng.random() < noise.changed_email
                else None
            )
            people.append(
                Person(
                    person_id=f"P{i:08d}",
                    household_id=household_id,
                    gender=gender,
                    first_name=first,
                    last_name=surname,
                    maiden_name=maiden,
                    birth_date=dob,
                    email=email,
                    old_email=old_email,
                    family_email=family_email,
                    mobile=_phone(rng, country, address.city),
                    landline=landline,
                    address=address,
                    old_address=old_address,
                    loyalty_no=f"L{int(rng.integers(10**8, 10**9 - 1))}"
                    if rng.random() < 0.4
                    else None,
                    country=country,
                )
            )
            i += 1
    return people
