-- depends_on: {{ ref('int_links_changed') }}
-- depends_on: {{ ref('int_contact_keys_changed') }}
{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_service_cases_attributed.parquet',
) }}

{%- set increment = marts_increment() %}

-- Every customer-service case with its unified individual.
with

{{ activity_again('cases', ref('int_service_cases_deduplicated'), increment) }}

links as {{ cdp_inlined() }} (
    {{ links_for('cases', increment) }}
),

contact_keys as {{ cdp_inlined() }} (
    {{ keys_for('cases', increment) }}
),

final as (
    {{ attribute_to_individual('cases', 'links', 'contact_keys') }}
),

{{ with_unchanged_activity('int_service_cases_attributed', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
