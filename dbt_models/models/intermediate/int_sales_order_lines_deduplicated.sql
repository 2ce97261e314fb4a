-- On a harmonise increment only the records a new load touched are staged and
-- deduplicated again; every other record keeps last build's row (with_unchanged_records).
{%- set increment = harmonise_increment() %}

with

unioned as (
    select * from {{ ref('int_sales_order_lines_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id']) }}
),

final as (
    select *
    from latest
),

{{ with_unchanged_records('int_sales_order_lines_deduplicated', increment) }}

select * from result
