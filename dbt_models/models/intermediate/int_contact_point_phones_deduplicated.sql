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
)

select * from final
