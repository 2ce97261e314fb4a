"""Build the identity input: one row per source person record, with its match keys.

Reads the harmonised Parquet of the dbt layer; a record's several emails, phones and
addresses are reduced to its first valid one for comparison, while all of its strong
identifiers are kept for deterministic stitching.
"""

from __future__ import annotations

from functools import lru_cache

import duckdb
import pyarrow as pa

from cdp.errors import CdpError
from cdp.workspace import Workspace

INPUTS = (
    "int_individuals_deduplicated",
    "int_contact_point_emails_deduplicated",
    "int_contact_point_phones_deduplicated",
    "int_contact_point_addresses_deduplicated",
    "int_party_identifications_deduplicated",
    "int_anonymous_visitors_linked",
)


@lru_cache(maxsize=1)
def _namer():
    from nicknames import NickNamer

    return NickNamer()


def canonical_first_name(key: str | None) -> str | None:
    """Bob, Rob and Robert share one key; names with no known variants stay as they are."""
    if not key:
        return key
    canon = _namer().canonicals_of(key)
    # A name that is itself a formal name keeps its own key (Mary stays Mary).
    if not canon or key in canon or _namer().nicknames_of(key):
        return key
    return min(canon)


def name_variants(key: str | None) -> list[str]:
    """The name and the names the list relates to it directly, either way: Bob -> [bob,
    bobby, rob, robert, ...]. Two names are nickname-compatible when one is in the other's
    list; a third name both relate to does not count (the list relates Robert and William
    to Bill, which would make father and son one person)."""
    if not key:
        return []
    return sorted({key, *_namer().canonicals_of(key), *_namer().nicknames_of(key)})


def connect_inputs(ws: Workspace) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in INPUTS:
        path = ws.harmonised_dir / f"{name}.parquet"
        if not path.exists():
            raise CdpError(
                f"identity resolution needs {path.name}: run the harmonisation (dbt) first"
            )
        con.execute(f"create view {name} as select * from read_parquet('{path}')")
    return con


# Party identifiers compared by Splink rather than joined on: a national id may carry a
# typo, and one person's two records may hold it once each.
COMPARED_IDENTIFIERS = ("national_id",)


def build_records(
    con: duckdb.DuckDBPyConnection, compared_identifiers: tuple[str, ...] = COMPARED_IDENTIFIERS
) -> pa.Table:
    """unique_id, source_name, source_record_id and the comparison columns."""
    records = con.sql(
        """
        with
        ind as (
            select * from int_individuals_deduplicated where source_record_id is not null
        ),
        em as (
            select source_name, source_record_id, arg_min(email_match_key, ordinal) as email_key
            from int_contact_point_emails_deduplicated where is_valid group by all
        ),
        ph as (
            select source_name, source_record_id, arg_min(phone_e164, ordinal) as phone
            from int_contact_point_phones_deduplicated where is_valid group by all
        ),
        ad as (
            select source_name, source_record_id,
                arg_min(address_line1_key, ordinal) as address_line1_key,
                arg_min(postal_code_key, ordinal) as postal_code,
                arg_min(city_key, ordinal) as city_key
            from int_contact_point_addresses_deduplicated group by all
        ),
        nid as (
            select source_name, source_record_id, min(identification_number) as national_id
            from int_party_identifications_deduplicated
            where identification_type in (select unnest($types)) group by all
        )
        select
            ind.source_name || ':' || ind.source_record_id as unique_id,
            ind.source_name, ind.source_record_id,
            ind.first_name, ind.last_name,
            ind.first_name_key, ind.last_name_key, cast(ind.birth_date as varchar) as birth_date,
            em.email_key, ph.phone, ad.address_line1_key, ad.postal_code, ad.city_key,
            nid.national_id, ind.updated_ts
        from ind
        left join em using (source_name, source_record_id)
        left join ph using (source_name, source_record_id)
        left join ad using (source_name, source_record_id)
        left join nid using (source_name, source_record_id)
        order by unique_id
        """,
        params={"types": list(compared_identifiers) or [""]},
    ).to_arrow_table()
    keys = records.column("first_name_key").to_pylist()
    distinct = {k: canonical_first_name(k) for k in set(keys)}
    variants = {k: name_variants(k) for k in distinct}
    at = records.schema.get_field_index("last_name_key")
    records = records.add_column(
        at, "first_name_canon", pa.array([distinct[k] for k in keys], pa.string())
    )
    return records.add_column(
        at + 1, "first_name_variants", pa.array([variants[k] for k in keys], pa.list_(pa.string()))
    )


def strong_ids(con: duckdb.DuckDBPyConnection, types: list[str]) -> pa.Table:
    """unique_id, id_type, id_value for every strong identifier of a person record."""
    if not types:
        return pa.table({"unique_id": [], "id_type": [], "id_value": []})
    return con.sql(
        """
        select distinct source_name || ':' || source_record_id as unique_id,
            identification_type as id_type, identification_number as id_value
        from int_party_identifications_deduplicated
        where identification_type in (select unnest($types)) and identification_number is not null
        order by 1, 2, 3
        """,
        params={"types": types},
    ).to_arrow_table()


def cookie_links(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """anonymous_id -> the person record it logged into (unique_id), with login counts."""
    return con.sql(
        """
        select anonymous_id, individual_source_name || ':' || individual_source_record_id as unique_id,
            login_events, last_login_ts
        from int_anonymous_visitors_linked
        order by anonymous_id, unique_id
        """
    ).to_arrow_table()
