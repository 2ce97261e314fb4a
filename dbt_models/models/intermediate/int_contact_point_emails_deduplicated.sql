-- On a harmonise increment only the records a new load touched are staged and
-- deduplicated again; every other record keeps last build's row (with_unchanged_records).
{%- set increment = harmonise_increment() %}

with

unioned as (
    select * from {{ ref('int_contact_point_emails_unioned') }}
),

rules as (
    select * from {{ ref('email_address_rules') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id', 'ordinal']) }}
),

-- the placeholder or role rule an address falls under, if any (placeholder first)
classified as (
    select
        latest.*,
        case
            when 'placeholder' in (by_local.kind, by_domain.kind) then 'placeholder'
            else coalesce(by_local.kind, by_domain.kind)
        end as rule_kind
    from latest
    left join rules as by_local
        on by_local.part = 'local' and by_local.value = split_part(latest.email_address, '@', 1)
    left join rules as by_domain
        on by_domain.part = 'domain' and by_domain.value = split_part(latest.email_address, '@', 2)
    where latest.email_address is not null
),

final as (
    select
        {{ star_except(['is_valid', 'email_match_key', 'rule_kind']) }},
        case when rule_kind = 'placeholder' then null else email_match_key end as email_match_key,
        is_valid and coalesce(rule_kind, '') != 'placeholder' as is_valid,
        is_valid and coalesce(rule_kind, '') = '' as is_personal,
        case
            when not is_valid then 'malformed'
            when rule_kind = 'placeholder' then 'placeholder'
        end as invalid_reason,
        source_name || ':' || source_record_id || ':contact_point_email:' || ordinal as contact_point_id
    from classified
),

{{ with_unchanged_records('int_contact_point_emails_deduplicated', increment) }}

select * from result
