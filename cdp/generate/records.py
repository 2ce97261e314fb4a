"""Turn one chunk of true people into the rows each source system holds about them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from cdp.generate import variants as v
from cdp.generate.noise import NoiseRates
from cdp.generate.people import Person
from cdp.generate.vocab import CAMPAIGNS, CASE_SUBJECTS, PAGES

N_PRODUCTS = 500


@dataclass
class Chunk:
    """Rows per source (column name -> list), and ground truth rows."""

    rows: dict[str, dict[str, list]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    truth_records: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    truth_cookies: dict[str, list] = field(default_factory=lambda: defaultdict(list))

    def add(self, source: str, **values) -> None:
        table = self.rows[source]
        for k, val in values.items():
            table[k].append(val)

    def truth(self, source: str, record_id: str, person_id: str) -> None:
        self.truth_records["source_name"].append(source)
        self.truth_records["source_record_id"].append(record_id)
        self.truth_records["person_id"].append(person_id)


class _Ids:
    def __init__(self, chunk_no: int):
        self.prefix = f"{chunk_no:04d}"
        self.counters: dict[str, int] = defaultdict(int)

    def next(self, letter: str) -> str:
        self.counters[letter] += 1
        return f"{letter}{self.prefix}{self.counters[letter]:07d}"


def _blank_key(rng, noise: NoiseRates, rid: str) -> str:
    return "" if rng.random() < noise.blank_primary_key else rid


def build_chunk(
    rng: np.random.Generator, chunk_no: int, people: list[Person], noise: NoiseRates
) -> Chunk:
    ch = Chunk()
    ids = _Ids(chunk_no)
    for p in people:
        systems = [
            rng.random() < noise.in_crm,
            rng.random() < noise.in_ecommerce,
            rng.random() < noise.in_newsletter,
        ]
        if not any(systems):
            systems[int(rng.integers(3))] = True
        # One system may still hold the person's old email.
        old_email_system = int(rng.integers(3)) if p.old_email else -1
        crm_ids: list[str] = []
        account_ids: list[str] = []
        subscriber_ids: list[str] = []
        if systems[0]:
            for _ in range(2 if rng.random() < noise.duplicate_in_system else 1):
                crm_ids.append(_crm_row(rng, ch, ids, p, noise, old_email_system == 0))
        if systems[1]:
            for _ in range(2 if rng.random() < noise.duplicate_in_system else 1):
                account_ids.append(_account_row(rng, ch, ids, p, noise, old_email_system == 1))
        if systems[2]:
            for _ in range(2 if rng.random() < noise.duplicate_in_system else 1):
                subscriber_ids.append(
                    _subscriber_row(rng, ch, ids, p, noise, old_email_system == 2)
                )
        crm_ids = [c for c in crm_ids if c]
        account_ids = [a for a in account_ids if a]
        subscriber_ids = [s for s in subscriber_ids if s]
        for a in account_ids:
            _orders(rng, ch, ids, a)
            _web(rng, ch, ids, p, a)
        for s in subscriber_ids:
            _email_engagement(rng, ch, ids, p, s)
        for c in crm_ids:
            if rng.random() < 0.15:
                _case(rng, ch, ids, p, c)
        _consents(rng, ch, ids, p)
    # Strangers: cookies that never log in.
    for _ in range(int(len(people) * 0.3)):
        cookie = ids.next("K")
        ch.truth_cookies["anonymous_id"].append(cookie)
        ch.truth_cookies["person_id"].append(None)
        ch.truth_cookies["logged_in"].append(False)
        _session(rng, ch, ids, cookie, None, login=False)
    return ch


def _person_view(rng, p: Person, noise: NoiseRates, older: bool):
    """Name and address as a system saw them; older systems may hold the past."""
    last = p.maiden_name if (p.maiden_name and older and rng.random() < 0.7) else p.last_name
    addr = p.old_address if (p.old_address and older and rng.random() < 0.7) else p.address
    return v.first_name(rng, p.first_name, noise), v.last_name(rng, last, noise), addr


def _contact_email(rng, p: Person, noise: NoiseRates, use_old: bool) -> str:
    if rng.random() < noise.missing_email:
        return ""
    base = p.old_email if use_old and p.old_email else p.email
    if p.family_email and rng.random() < 0.5:
        base = p.family_email
    return v.email(rng, base, noise)


def _contact_phone(rng, p: Person, noise: NoiseRates) -> str:
    if rng.random() < noise.missing_phone:
        return ""
    number = p.landline if p.landline and rng.random() < 0.4 else p.mobile
    return v.phone(rng, number)


def _crm_row(rng, ch: Chunk, ids: _Ids, p: Person, noise: NoiseRates, old_email: bool) -> str:
    rid = ids.next("C")
    stale = rng.random() < noise.stale_record * 2  # CRMs hold the oldest records
    first, last, addr = _person_view(rng, p, noise, older=stale or rng.random() < 0.3)
    created = v.timestamp(rng, True)
    modified = v.timestamp(rng, stale)
    if modified < created:
        created, modified = modified, created
    city, state = v.city(addr)
    no_addr = rng.random() < noise.missing_address
    key = _blank_key(rng, noise, rid)
    ch.add(
        "crm_contacts",
        contact_id=key,
        salutation=("Ms." if p.gender == "F" else "Mr.") if rng.random() < 0.5 else "",
        first_name=first,
        last_name=last,
        dob="" if rng.random() < noise.missing_dob else v.birth_date(rng, p.birth_date, noise),
        gender=p.gender if rng.random() < 0.8 else "",
        email=_contact_email(rng, p, noise, old_email),
        phone=_contact_phone(rng, p, noise),
        street="" if no_addr else v.street(rng, addr, noise),
        city="" if no_addr else city,
        zip="" if no_addr else v.postal_code(rng, addr),
        state="" if no_addr else state,
        country="" if no_addr else addr.country,
        loyalty_no=p.loyalty_no or "" if rng.random() < 0.9 else "",
        created_at=v.ts_text(created),
        modified_at=v.ts_text(modified),
    )
    if key:
        ch.truth("crm_contacts", key, p.person_id)
    return key


def _account_row(rng, ch: Chunk, ids: _Ids, p: Person, noise: NoiseRates, old_email: bool) -> str:
    rid = ids.next("A")
    stale = rng.random() < noise.stale_record
    first, last, addr = _person_view(rng, p, noise, older=stale)
    created = v.timestamp(rng, True)
    updated = v.timestamp(rng, stale)
    if updated < created:
        created, updated = updated, created
    city, state = v.city(addr)
    email = _contact_email(rng, p, noise, old_email)
    if not email:  # a web shop needs a login email
        email = v.email(rng, p.email, noise)
    key = _blank_key(rng, noise, rid)
    ch.add(
        "ecommerce_accounts",
        account_id=key or None,
        email=email,
        first_name=first,
        last_name=last,
        phone=_contact_phone(rng, p, noise) or None,
        birth_date=p.birth_date.isoformat() if rng.random() < 0.4 else None,
        shipping_street=v.street(rng, addr, noise),
        shipping_city=city,
        shipping_zip=v.postal_code(rng, addr),
        shipping_state=state,
        shipping_country=addr.country,
        loyalty_no=p.loyalty_no if p.loyalty_no and rng.random() < 0.6 else None,
        created_at=v.ts_text(created),
        updated_at=v.ts_text(updated),
    )
    if key:
        ch.truth("ecommerce_accounts", key, p.person_id)
    return key


def _subscriber_row(
    rng, ch: Chunk, ids: _Ids, p: Person, noise: NoiseRates, old_email: bool
) -> str:
    rid = ids.next("S")
    stale = rng.random() < noise.stale_record
    first, last, addr = _person_view(rng, p, noise, older=stale)
    signup = v.timestamp(rng, True)
    updated = v.timestamp(rng, stale, not_before=signup.date())
    email = v.email(rng, p.old_email if old_email and p.old_email else p.email, noise)
    key = _blank_key(rng, noise, rid)
    ch.add(
        "newsletter_subscribers",
        subscriber_id=key,
        email=email,
        first_name=first if rng.random() < 0.9 else "",
        last_name=last if rng.random() < 0.6 else "",
        phone=_contact_phone(rng, p, noise) if rng.random() < 0.15 else "",
        zip=v.postal_code(rng, addr) if rng.random() < 0.4 else "",
        signup_at=v.ts_text(signup),
        status="subscribed" if rng.random() < 0.85 else "unsubscribed",
        updated_at=v.ts_text(updated),
    )
    if key:
        ch.truth("newsletter_subscribers", key, p.person_id)
    return key


def _orders(rng, ch: Chunk, ids: _Ids, account_id: str) -> None:
    for _ in range(int(rng.poisson(1.4))):
        oid = ids.next("O")
        ts = v.timestamp(rng, rng.random() < 0.3)
        total = 0.0
        for line_no in range(1, int(rng.integers(1, 4)) + 1):
            sku = f"SKU{int(rng.integers(N_PRODUCTS)):05d}"
            qty = int(rng.integers(1, 4))
            price = _price(sku)
            ch.add(
                "ecommerce_order_lines",
                order_id=oid,
                line_no=line_no,
                sku=sku,
                qty=qty,
                unit_price=price,
                line_total=round(price * qty, 2),
            )
            total += price * qty
        ch.add(
            "ecommerce_orders",
            order_id=oid,
            account_id=account_id,
            order_ts=ts,
            status=("delivered", "shipped", "cancelled", "returned")[
                int(rng.choice(4, p=[0.8, 0.1, 0.06, 0.04]))
            ],
            channel=("web", "app")[int(rng.integers(2))],
            total=round(total, 2),
            currency="USD",
        )


def _price(sku: str) -> float:
    n = int(sku[3:])
    return round(5 + (n * 7919 % 20000) / 100, 2)


def _web(rng, ch: Chunk, ids: _Ids, p: Person, account_id: str) -> None:
    for _ in range(int(rng.integers(1, 3))):
        cookie = ids.next("K")
        login = rng.random() < 0.85
        ch.truth_cookies["anonymous_id"].append(cookie)
        ch.truth_cookies["person_id"].append(p.person_id)
        ch.truth_cookies["logged_in"].append(login)
        _session(rng, ch, ids, cookie, account_id, login)


def _session(rng, ch: Chunk, ids: _Ids, cookie: str, account_id: str | None, login: bool) -> None:
    session = ids.next("W")
    ts = v.timestamp(rng, False)
    n = int(rng.integers(1, 4))
    login_at = int(rng.integers(0, n)) if login else -1
    for k in range(n):
        if k == login_at:
            etype = "login"
        else:
            etype = ("page_view", "page_view", "search", "add_to_cart")[int(rng.integers(4))]
        logged_in = login and k >= login_at
        ch.add(
            "web_events",
            event_id=ids.next("E"),
            anonymous_id=cookie,
            account_id=account_id if logged_in else None,
            session_id=session,
            event_type=etype,
            page=PAGES[int(rng.integers(len(PAGES)))],
            ts=v.ts_text(ts + timedelta(seconds=40 * k)),
        )


def _email_engagement(rng, ch: Chunk, ids: _Ids, p: Person, subscriber_id: str) -> None:
    for campaign in rng.choice(len(CAMPAIGNS), size=2, replace=False):
        ts = v.timestamp(rng, False)
        events = ["send"]
        if rng.random() < 0.02:
            events = ["send", "bounce"]
        elif rng.random() < 0.35:
            events += ["open"] + (["click"] if rng.random() < 0.3 else [])
        for k, etype in enumerate(events):
            ch.add(
                "email_engagement",
                event_id=ids.next("M"),
                subscriber_id=subscriber_id,
                email=p.email,
                campaign=CAMPAIGNS[int(campaign)],
                event_type=etype,
                event_ts=v.ts_text(ts + timedelta(hours=3 * k)),
            )


def _case(rng, ch: Chunk, ids: _Ids, p: Person, contact_id: str) -> None:
    opened = v.timestamp(rng, rng.random() < 0.3)
    status = ("new", "open", "pending", "closed")[int(rng.choice(4, p=[0.1, 0.15, 0.1, 0.65]))]
    closed = (
        v.ts_text(opened + timedelta(hours=int(rng.integers(1, 200)))) if status == "closed" else ""
    )
    ch.add(
        "service_cases",
        case_id=ids.next("X"),
        contact_id=contact_id if rng.random() < 0.8 else "",
        requester_email=p.email if rng.random() < 0.7 else "",
        requester_phone=v.phone(rng, p.mobile) if rng.random() < 0.5 else "",
        opened_at=v.ts_text(opened),
        closed_at=closed,
        status=status,
        channel=("phone", "email", "chat", "web")[int(rng.integers(4))],
        priority=("low", "medium", "high", "urgent")[int(rng.choice(4, p=[0.4, 0.4, 0.15, 0.05]))],
        subject=CASE_SUBJECTS[int(rng.integers(len(CASE_SUBJECTS)))],
    )


def _consents(rng, ch: Chunk, ids: _Ids, p: Person) -> None:
    if rng.random() < 0.35:
        return
    for purpose, channel in (
        ("marketing", "email"),
        ("marketing", "sms"),
        ("personalisation", "web"),
        ("marketing", "ads"),
    ):
        if channel != "email" and rng.random() < 0.6:
            continue
        ts = v.timestamp(rng, True)
        for _ in range(1 + int(rng.random() < 0.3)):
            status = ("granted", "denied", "withdrawn")[int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
            ch.add(
                "consent_records",
                consent_id=ids.next("G"),
                email=p.email if channel != "sms" else "",
                phone=v.phone(rng, p.mobile) if channel in ("sms", "ads") else "",
                purpose=purpose,
                channel=channel,
                status=status,
                captured_at=v.ts_text(ts),
            )
            ts = ts + timedelta(days=int(rng.integers(1, 300)))
