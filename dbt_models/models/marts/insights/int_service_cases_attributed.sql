{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_service_cases_attributed.parquet',
) }}

-- Every customer-service case with its unified individual.
with

cases as (
    select * from {{ ref('int_service_cases_deduplicated') }}
),

links as {{ cdp_inlined() }} (
    select * from {{ source('identity', 'unified_link_individual') }}
),

contact_keys as {{ cdp_inlined() }} (
    select * from {{ ref('int_contact_keys_resolved') }}
),

final as (
    {{ attribute_to_individual('cases', 'links', 'contact_keys') }}
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
