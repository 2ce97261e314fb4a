-- On a harmonise increment only the records a new load touched are staged and
-- deduplicated again; every other record keeps last build's row (with_unchanged_records).
{%- set increment = harmonise_increment() %}

with

unioned as (
    select * from {{ ref('int_contact_point_addresses_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id', 'ordinal']) }}
),

final as (
    select
        *,
        source_name || ':' || source_record_id || ':contact_point_address:' || ordinal as contact_point_id
    from latest
    where coalesce(address_line1, city, postal_code) is not null
),

{{ with_unchanged_records('int_contact_point_addresses_deduplicated', increment) }}

select * from result
