{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_engagement_webs_attributed.parquet',
) }}

-- Every web event with its unified individual: through its logged-in account, else its
-- cookie once that cookie was seen logged in (a linked anonymous visitor).
with

web_events as (
    select * from {{ ref('int_engagement_webs_deduplicated') }}
),

links as {{ cdp_inlined() }} (
    select * from {{ source('identity', 'unified_link_individual') }}
),

contact_keys as {{ cdp_inlined() }} (
    select * from {{ ref('int_contact_keys_resolved') }}
),

final as (
    {{ attribute_to_individual('web_events', 'links', 'contact_keys', cookie_column='anonymous_id') }}
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
