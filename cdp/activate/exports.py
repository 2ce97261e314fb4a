"""Write a segment's export for an activation channel, checking consent per contact point.

Consent is opt-in: a member is exported only when the latest consent record for the
channel's contact point, purpose and channel says `granted`. Everyone left out is
counted by reason in the manifest, never listed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from cdp.activate.specs import CONSENT_CHANNEL, ActivationSpec
from cdp.errors import ConfigError
from cdp.io.atomic import TMP_PREFIX, replace_dir
from cdp.workspace import Workspace

CONSENTS = "int_contact_point_consents_deduplicated.parquet"


@dataclass
class ExportResult:
    activation: str
    segment: str
    run_id: str
    path: str
    rows: int
    segment_size: int
    excluded_no_contact_point: int
    excluded_no_consent: int


def _contact_column(channel: str) -> str | None:
    return {"email": "email_match_key", "sms": "phone_e164"}.get(channel)


def export_activation(ws: Workspace, spec: ActivationSpec, run_id: str) -> ExportResult:
    c360 = ws.marts_dir / "customer_360.parquet"
    membership = ws.marts_dir / "segment_membership.parquet"
    consents = ws.harmonised_dir / CONSENTS
    con = duckdb.connect()
    con.execute(f"create view customer_360 as select * from read_parquet('{c360}')")
    columns = {r[0] for r in con.execute("describe customer_360").fetchall()}
    unknown = [f for f in spec.fields if f not in columns]
    if unknown:
        raise ConfigError(
            ws.activations_dir / f"{spec.name}.yml",
            f"fields: unknown customer_360 column(s) {', '.join(unknown)}",
        )
    # Segment names are validated identifiers ([a-z0-9_]), so quoting is enough here.
    con.execute(
        f"create view members as select c.* from customer_360 c "
        f"join read_parquet('{membership}') m using (unified_individual_id) "
        f"where m.segment_name = {_quote(spec.segment)}"
    )
    if consents.exists():
        con.execute(f"create view consents as select * from read_parquet('{consents}')")
    else:
        con.execute(
            "create view consents as select null::varchar as email_match_key, "
            "null::varchar as phone_e164, null::varchar as purpose, null::varchar as channel, "
            "null::varchar as status, null::timestamp as captured_ts where false"
        )
    consent_channel = CONSENT_CHANNEL[spec.channel]
    # The latest consent per contact point, purpose and channel wins.
    con.execute(
        """
        create view latest_consent as
        select email_match_key, phone_e164, status
        from consents
        where purpose = $purpose and channel = $channel
        qualify row_number() over (
            partition by coalesce(email_match_key, ''), coalesce(phone_e164, '')
            order by captured_ts desc nulls last, status
        ) = 1
        """.replace("$purpose", _quote(spec.consent_purpose)).replace(
            "$channel", _quote(consent_channel)
        )
    )
    segment_size = con.execute("select count(*) from members").fetchone()[0]
    contact = _contact_column(spec.channel)
    if contact is None:
        # ads and personalisation: any contact point with consent qualifies
        eligible = """
            select m.*, true as has_contact,
                exists (select 1 from latest_consent lc where lc.status = 'granted' and (
                    lc.email_match_key = m.email_match_key or lc.phone_e164 = m.phone_e164)) as consented
            from members m
        """
    else:
        eligible = f"""
            select m.*, m.{contact} is not null as has_contact,
                exists (select 1 from latest_consent lc
                        where lc.status = 'granted' and lc.{contact} = m.{contact}) as consented
            from members m
        """
    con.execute(f"create view eligible as {eligible}")
    no_contact, no_consent = con.execute(
        "select count(*) filter (where not has_contact), "
        "count(*) filter (where has_contact and not consented) from eligible"
    ).fetchone()

    select_fields = ", ".join(_export_expr(f, spec) for f in spec.fields)
    query = (
        f"select {select_fields} from eligible where has_contact and consented "
        "order by unified_individual_id"
    )
    if spec.format == "csv":
        query = _neutralise_formulas(con, query)
    target = ws.exports_dir / spec.name / run_id
    staged = target.with_name(f"{TMP_PREFIX}{run_id}")
    shutil.rmtree(staged, ignore_errors=True)
    staged.parent.mkdir(parents=True, exist_ok=True)
    # Exports hold contact points: only the owner may read them, from the first byte on
    # (the folder is private while its files are written, the files before it is renamed).
    staged.mkdir(mode=0o700)
    out_file = staged / f"{spec.name}.{spec.format}"
    if spec.format == "csv":
        con.execute(f"copy ({query}) to '{out_file}' (header, delimiter ',', quote '\"')")
    else:
        con.execute(f"copy ({query}) to '{out_file}' (format json)")
    rows = con.execute(f"select count(*) from ({query})").fetchone()[0]
    result = ExportResult(
        activation=spec.name,
        segment=spec.segment,
        run_id=run_id,
        path=str(target / out_file.name),
        rows=rows,
        segment_size=segment_size,
        excluded_no_contact_point=no_contact,
        excluded_no_consent=no_consent,
    )
    manifest = {
        **asdict(result),
        "channel": spec.channel,
        "consent_purpose": spec.consent_purpose,
        "consent_channel": consent_channel,
        "format": spec.format,
        "fields": spec.fields,
        "hashed": spec.hash_identifiers,
        "sha256": hashlib.sha256(out_file.read_bytes()).hexdigest(),
        "path": str(Path(spec.name) / run_id / out_file.name),
    }
    (staged / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for f in staged.iterdir():
        f.chmod(0o600)
    replace_dir(target, staged)
    return result


def _neutralise_formulas(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote.

    A value such as `=HYPERLINK("http://x","y")` in a CSV opened in Excel or Sheets is
    executed (OWASP "CSV injection"). Only text columns are touched, so a negative
    number in a numeric column stays a number; and a text cell that is a plain signed
    number (an E.164 phone `+14155550101`) cannot run anything, so it is left whole
    for the SMS tool that reads it.
    """
    text = [
        name for name, kind, *_ in con.execute(f"describe {query}").fetchall() if kind == "VARCHAR"
    ]
    if not text:
        return query
    cases = []
    for c in map(_ident, text):
        risky = f"left({c}, 1) in ('=', '+', '-', '@', chr(9), chr(13))"
        number = f"regexp_full_match({c}, '[+-][0-9]+([.][0-9]+)?')"
        cases.append(f"case when {risky} and not {number} then chr(39) || {c} else {c} end as {c}")
    return f"select * replace ({', '.join(cases)}) from ({query})"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _export_expr(field: str, spec: ActivationSpec) -> str:
    if spec.hash_identifiers and field in ("email_address", "email_match_key", "phone_e164"):
        return f"sha256(lower(trim({field}))) as {field}_sha256"
    return field
