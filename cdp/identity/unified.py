"""Build `unified_individual`: one row per person, with reconciled name and birth date."""

from __future__ import annotations

import duckdb
import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("unified_individual_id", pa.string()),
        ("record_count", pa.int64()),
        ("source_count", pa.int64()),
        ("sources", pa.list_(pa.string())),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("birth_date", pa.date32()),
        ("created_run_id", pa.string()),
        ("updated_run_id", pa.string()),
    ]
)


def _best(column: str) -> str:
    """Most frequent value among a person's records; ties go to the most recently updated."""
    return f"""
        {column}_best as (
            select unified_individual_id, {column} from (
                select unified_individual_id, {column}, count(*) as n, max(updated_ts) as latest
                from members where {column} is not null group by all
            )
            qualify row_number() over (
                partition by unified_individual_id order by n desc, latest desc nulls last, {column}
            ) = 1
        )"""


def build_unified(
    records: pa.Table,
    membership: pa.Table,
    ids_meta: pa.Table,
) -> pa.Table:
    """`membership`: unique_id, unified_individual_id.
    `ids_meta`: unified_individual_id, created_run_id, updated_run_id (decided by the caller)."""
    con = duckdb.connect(config={"memory_limit": "1GB"})
    con.register(
        "records",
        records.select(
            ["unique_id", "source_name", "first_name", "last_name", "birth_date", "updated_ts"]
        ),
    )
    con.register("membership", membership)
    con.register("ids_meta", ids_meta)
    table = con.sql(
        f"""
        with
        members as (
            select m.unified_individual_id, r.*
            from membership m join records r using (unique_id)
        ),
        {_best("first_name")},
        {_best("last_name")},
        {_best("birth_date")},
        counts as (
            select unified_individual_id, count(*) as record_count,
                count(distinct source_name) as source_count,
                list(distinct source_name order by source_name) as sources
            from members group by all
        )
        select c.unified_individual_id, c.record_count, c.source_count, c.sources,
            f.first_name, l.last_name, try_cast(b.birth_date as date) as birth_date,
            i.created_run_id, i.updated_run_id
        from counts c
        left join first_name_best f using (unified_individual_id)
        left join last_name_best l using (unified_individual_id)
        left join birth_date_best b using (unified_individual_id)
        left join ids_meta i using (unified_individual_id)
        order by c.unified_individual_id
        """
    ).to_arrow_table()
    return table.cast(SCHEMA)
