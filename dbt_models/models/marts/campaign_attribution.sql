{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/campaign_attribution.parquet',
    tags=['marts'],
) }}

-- One row per email campaign: its sends and clicks, and the revenue orders attributed to
-- it by last click within insights.attribution_window_days
-- (int_sales_orders_attributed_to_campaigns), with their revenue in the reporting currency.
with

email_events as (
    select * from {{ ref('int_engagement_emails_attributed') }}
),

attributed_orders as (
    select * from {{ ref('int_sales_orders_attributed_to_campaigns') }}
),

campaign_events as (
    select
        campaign,
        count(*) filter (where event_type = 'send') as sends,
        count(*) filter (where event_type = 'click') as clicks,
        count(distinct unified_individual_id) filter (where event_type = 'click') as clickers
    from email_events
    where campaign is not null
    group by campaign
),

campaign_orders as (
    select
        campaign,
        count(*) as attributed_orders,
        count(distinct unified_individual_id) as attributed_customers,
        sum(amount_reporting) as attributed_revenue,
        min(order_ts) as first_attributed_order_ts,
        max(order_ts) as last_attributed_order_ts
    from attributed_orders
    where campaign is not null
    group by campaign
),

final as (
    select
        campaign_events.campaign,
        campaign_events.sends,
        campaign_events.clicks,
        campaign_events.clickers,
        coalesce(campaign_orders.attributed_orders, 0) as attributed_orders,
        coalesce(campaign_orders.attributed_customers, 0) as attributed_customers,
        cast(coalesce(campaign_orders.attributed_revenue, 0) as decimal(18, 2)) as attributed_revenue,
        '{{ env_var("CDP_REPORTING_CURRENCY") }}' as reporting_currency,
        campaign_orders.first_attributed_order_ts,
        campaign_orders.last_attributed_order_ts
    from campaign_events
    left join campaign_orders using (campaign)
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by campaign
