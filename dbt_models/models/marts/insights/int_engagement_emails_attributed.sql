-- depends_on: {{ ref('int_links_changed') }}
-- depends_on: {{ ref('int_contact_keys_changed') }}
{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_engagement_emails_attributed.parquet',
) }}

{%- set increment = marts_increment() %}

-- Every newsletter send, open and click with its unified individual.
with

{{ activity_again('email_events', ref('int_engagement_emails_deduplicated'), increment) }}

links as {{ cdp_inlined() }} (
    {{ links_for('email_events', increment) }}
),

contact_keys as {{ cdp_inlined() }} (
    {{ keys_for('email_events', increment) }}
),

final as (
    {{ attribute_to_individual('email_events', 'links', 'contact_keys') }}
),

{{ with_unchanged_activity('int_engagement_emails_attributed', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
