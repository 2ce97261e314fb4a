"""`cdp profile` in the terminal: the person's card, then one table per section."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.errors import CdpError

if TYPE_CHECKING:
    from rich.console import Console

# Insight columns shown on the card, when the marts have them: (column, label).
INSIGHTS = (
    ("lifetime_value", "LTV"),
    ("order_count", "orders"),
    ("average_order_value", "AOV"),
    ("days_since_last_order", "days since last order"),
    ("rfm_segment", "RFM"),
    ("churn_risk", "churn risk"),
    ("churn_risk_band", "band"),
    ("preferred_channel", "prefers"),
    ("top_product_category", "top category"),
    ("email_open_rate_90d", "open rate 90d"),
    ("web_sessions_30d", "web sessions 30d"),
    ("open_service_cases", "open cases"),
)

SECTION_COLUMNS = {
    "contact_points": ("channel", "contact_value", "sources", "is_best", "last_seen_ts"),
    "consents": ("purpose", "channel", "status", "captured_ts", "decided_by"),
    "orders": ("order_id", "order_ts", "status", "amount", "currency", "amount_reporting"),
    "service_cases": ("case_id", "opened_ts", "status", "channel", "priority", "subject"),
    "engagement": ("event_ts", "event_type", "campaign"),
    "records": ("source_name", "source_record_id", "record_kind", "linked_by", "match_probability"),
}
TITLES = {
    "contact_points": "contact points (best first, with the sources that hold them)",
    "consents": "consent per purpose and channel, as exports apply it",
    "orders": "recent orders",
    "service_cases": "service cases",
    "engagement": "recent email engagement",
    "records": "source records",
}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)


def print_profile(console: Console, doc: dict) -> None:
    # rich only for the card: `--format json` answers without it (about 80 ms of imports)
    from rich.panel import Panel
    from rich.table import Table

    c = doc["customer"]
    name = " ".join(str(x) for x in (c.get("first_name"), c.get("last_name")) if x) or "(no name)"
    insights = [f"{label} {_text(c[col])}" for col, label in INSIGHTS if c.get(col) is not None]
    next_best = c.get("next_best_product_name") or c.get("next_best_product")
    card = [
        f"[bold]{name}[/]  born {c.get('birth_date') or '?'}  "
        f"({c.get('record_count', 0)} records from {c.get('source_count', 0)} sources)",
        f"email {c.get('email_address') or '-'}   phone {c.get('phone_e164') or '-'}",
        "address "
        + (
            ", ".join(
                str(c[k]) for k in ("address_line1", "city", "postal_code", "region") if c.get(k)
            )
            or "-"
        ),
        "  ".join(insights) or "no insights yet",
        f"next best product {next_best or '-'}   segments {', '.join(doc['segments']) or '-'}",
    ]
    console.print(Panel("\n".join(card), title=doc["unified_individual_id"], title_align="left"))
    for section, columns in SECTION_COLUMNS.items():
        rows = doc.get(section) or []
        if not rows:
            continue
        shown = [col for col in columns if col in rows[0]]
        table = Table(title=TITLES[section], title_justify="left")
        for col in shown:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(_text(row.get(col)) for col in shown))
        console.print(table)


def show_profiles(
    query: str, workspace: str | Path | None, postcode: str | None, format: str
) -> None:
    """`cdp profile`: every profile the query names, as cards or as JSON (one document,
    or a list when the query names several people). Raises CdpError when none."""
    from cdp.profile import lookup_profiles
    from cdp.workspace import resolve_workspace

    if format not in ("text", "json"):
        raise CdpError(f"--format must be text or json, not {format!r}")
    ws = resolve_workspace(Path(workspace) if workspace else None)
    started = time.perf_counter()
    profiles = lookup_profiles(ws, query, postcode=postcode)
    if not profiles:
        raise CdpError("no unified individual matches that email, phone, id or name")
    if format == "json":
        print(json.dumps(profiles if len(profiles) > 1 else profiles[0], indent=1))
        return
    from rich.console import Console

    console = Console()
    for p in profiles:
        print_profile(console, p)
    console.print(f"[dim]{len(profiles)} profile(s) in {time.perf_counter() - started:.3f}s[/]")


def show_profiles_or_exit_code(
    query: str, workspace: str | None, postcode: str | None, format: str
) -> int:
    """show_profiles for the entry point's fast path: errors become one line and a code,
    as under the typer command."""
    try:
        show_profiles(query, workspace, postcode, format)
    except (Exception, KeyboardInterrupt) as e:
        from cdp.cli.errors import report  # rich: loaded only to report

        return report(e)
    return 0
