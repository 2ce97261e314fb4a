with

unioned as (
    select * from {{ ref('int_party_identifications_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id', 'ordinal']) }}
),

final as (
    select
        *,
        source_name || ':' || source_record_id || ':party_identification:' || ordinal as party_identification_id
    from latest
    where identification_number is not null
)

select * from final
