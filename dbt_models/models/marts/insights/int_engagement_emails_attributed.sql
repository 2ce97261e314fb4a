{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_engagement_emails_attributed.parquet',
) }}

{%- set increment = marts_increment() %}
{#- what an increment reads to find the rows to attribute again (activity_again);
    named at parse time only, so unit tests need not give them -#}
{%- do parse_time_refs(['int_links_changed', 'int_contact_keys_changed']) %}

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

-- on an increment, only the rows attributed again that differ from the last
-- build's, as a new part (macros/increment.sql)
{{ attributed_rows('int_engagement_emails_attributed', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
