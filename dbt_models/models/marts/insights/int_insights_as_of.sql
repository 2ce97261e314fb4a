{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_insights_as_of.parquet',
) }}

{#- cdp.yml insights.as_of: latest_event, today, or an ISO date (the end of that day). -#}
{%- set as_of = env_var('CDP_AS_OF') -%}

-- "Now" for every relative window of the insights, as one row. With latest_event it is
-- the latest timestamp of any activity in the lake, so two runs on the same data give
-- the same answers; activity after it is left out of every insight.
with

orders as (
    select * from {{ ref('int_sales_orders_deduplicated') }}
),

email_events as (
    select * from {{ ref('int_engagement_emails_deduplicated') }}
),

web_events as (
    select * from {{ ref('int_engagement_webs_deduplicated') }}
),

cases as (
    select * from {{ ref('int_service_cases_deduplicated') }}
),

activity as (
    select max(order_ts) as ts from orders
    union all
    select max(event_ts) as ts from email_events
    union all
    select max(event_ts) as ts from web_events
    union all
    select max(greatest(opened_ts, closed_ts)) as ts from cases
),

final as (
    select
        '{{ as_of }}' as as_of_rule,
        max(ts) as latest_event_ts,
        {% if as_of == 'latest_event' -%}
            max(ts)
        {%- elif as_of == 'today' -%}
            cast(current_date as timestamp) + interval 1 day - interval 1 microsecond
        {%- else -%}
            cast(date '{{ as_of }}' as timestamp) + interval 1 day - interval 1 microsecond
        {%- endif %} as as_of_ts
    from activity
)

select * from final
