{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_sales_orders_attributed_to_campaigns.parquet',
) }}

{%- set window_days = env_var('CDP_ATTRIBUTION_WINDOW_DAYS') | int -%}

-- Last-click attribution: every revenue order, with the last email campaign its buyer
-- clicked in the insights.attribution_window_days days before it (click_ts in
-- [order_ts - window, order_ts]); a tie between clicks at one instant goes to the first
-- campaign alphabetically. Orders with no click in the window have a null campaign.
with

orders as (
    select * from {{ ref('int_sales_orders_attributed') }}
),

email_events as (
    select * from {{ ref('int_engagement_emails_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

counted_orders as (
    select orders.*
    from orders
    cross join as_of
    where
        orders.unified_individual_id is not null
        and orders.is_revenue
        and orders.order_ts <= as_of.as_of_ts
),

clicks as (
    select
        unified_individual_id,
        campaign,
        event_ts as click_ts
    from email_events
    where
        event_type = 'click'
        and unified_individual_id is not null
        and campaign is not null
        and event_ts is not null
),

last_click as (
    select
        counted_orders.source_name,
        counted_orders.source_record_id,
        clicks.campaign,
        clicks.click_ts
    from counted_orders
    inner join clicks
        on
            counted_orders.unified_individual_id = clicks.unified_individual_id
            and counted_orders.order_ts >= clicks.click_ts
            and clicks.click_ts >= counted_orders.order_ts - {{ cdp_days(window_days) }}
    qualify row_number() over (
        partition by counted_orders.source_name, counted_orders.source_record_id
        order by clicks.click_ts desc, clicks.campaign asc
    ) = 1
),

final as (
    select
        counted_orders.source_name,
        counted_orders.source_record_id,
        counted_orders.order_id,
        counted_orders.unified_individual_id,
        counted_orders.order_ts,
        counted_orders.amount_reporting,
        counted_orders.reporting_currency,
        last_click.campaign,
        last_click.click_ts,
        {{ window_days }} as attribution_window_days,
        cast(
            round({{ cdp_date_diff('second', 'last_click.click_ts', 'counted_orders.order_ts') }} / 3600, 2)
            as decimal(9, 2)
        ) as hours_from_click
    from counted_orders
    left join last_click using (source_name, source_record_id)
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
