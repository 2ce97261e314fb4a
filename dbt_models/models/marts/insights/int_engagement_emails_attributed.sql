{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_engagement_emails_attributed.parquet',
) }}

-- Every newsletter send, open and click with its unified individual.
with

email_events as (
    select * from {{ ref('int_engagement_emails_deduplicated') }}
),

links as {{ cdp_inlined() }} (
    select * from {{ source('identity', 'unified_link_individual') }}
),

contact_keys as {{ cdp_inlined() }} (
    select * from {{ ref('int_contact_keys_resolved') }}
),

final as (
    {{ attribute_to_individual('email_events', 'links', 'contact_keys') }}
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
