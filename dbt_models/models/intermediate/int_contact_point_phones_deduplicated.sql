-- On a harmonise increment only the records a new load touched are staged and
-- deduplicated again; every other record keeps last build's row (with_unchanged_records).
{%- set increment = harmonise_increment() %}

with

unioned as (
    select * from {{ ref('int_contact_point_phones_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id', 'ordinal']) }}
),

final as (
    select
        *,
        source_name || ':' || source_record_id || ':contact_point_phone:' || ordinal as contact_point_id
    from latest
    where phone_number is not null
),

{{ with_unchanged_records('int_contact_point_phones_deduplicated', increment) }}

select * from result
