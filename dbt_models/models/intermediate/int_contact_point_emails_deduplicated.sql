with

unioned as (
    select * from {{ ref('int_contact_point_emails_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id', 'ordinal']) }}
),

final as (
    select
        *,
        source_name || ':' || source_record_id || ':contact_point_email:' || ordinal as contact_point_id
    from latest
    where email_address is not null
)

select * from final
