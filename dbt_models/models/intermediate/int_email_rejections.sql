-- Email addresses set aside, counted per source and reason: malformed (no usable
-- address) or placeholder (a rule of the email_address_rules seed). Each is kept as
-- given in int_contact_point_emails_deduplicated, without a match key.
with

emails as (
    select * from {{ ref('int_contact_point_emails_deduplicated') }}
),

final as (
    select
        source_name,
        invalid_reason as reason,
        count(*) as rejected
    from emails
    where invalid_reason is not null
    group by source_name, invalid_reason
)

select * from final
