{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/customer_360.parquet',
    tags=['marts'],
) }}

-- One row per unified individual: the golden record (unified_individual), the best
-- contact point per channel (unified_contact_point), and the insights computed per
-- person in models/marts/insights. Only joins: every formula lives in its own model
-- (docs/insights.md). Segments are filters over this table.
with

unified_individuals as (
    select * from {{ ref('unified_individual') }}
),

-- read again by each best_* below with its own filter: kept whole once, its 2.9 million
-- rows cost more (customer_360 alone at 1M: 2.55 -> 2.25 s)
contact_points as {{ cdp_inlined() }} (
    select * from {{ ref('unified_contact_point') }}
),

order_stats as (
    select * from {{ ref('int_sales_orders_aggregated_to_unified_individual') }}
),

rfm as (
    select * from {{ ref('int_rfm_scores_aggregated_to_unified_individual') }}
),

email_stats as (
    select * from {{ ref('int_engagement_emails_aggregated_to_unified_individual') }}
),

web_stats as (
    select * from {{ ref('int_engagement_webs_aggregated_to_unified_individual') }}
),

case_stats as (
    select * from {{ ref('int_service_cases_aggregated_to_unified_individual') }}
),

channels as (
    select * from {{ ref('int_channel_interactions_aggregated_to_unified_individual') }}
),

categories as (
    select * from {{ ref('int_product_categories_aggregated_to_unified_individual') }}
),

next_best as (
    select * from {{ ref('int_next_best_products_aggregated_to_unified_individual') }}
),

churn as (
    select * from {{ ref('int_churn_risks_scored') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

best_email as (
    select
        unified_individual_id,
        contact_value as email_address,
        match_key as email_match_key
    from contact_points
    where channel = 'email' and is_best
),

best_phone as (
    select
        unified_individual_id,
        contact_value as phone_e164
    from contact_points
    where channel = 'phone' and is_best
),

best_address as (
    select
        unified_individual_id,
        address_line1,
        city,
        postal_code,
        region,
        country
    from contact_points
    where channel = 'address' and is_best
),

final as (
    select
        unified_individuals.unified_individual_id,
        unified_individuals.first_name,
        unified_individuals.last_name,
        unified_individuals.birth_date,
        unified_individuals.gender,
        unified_individuals.record_count,
        unified_individuals.source_count,
        best_email.email_address,
        best_email.email_match_key,
        best_phone.phone_e164,
        best_address.address_line1,
        best_address.city,
        best_address.postal_code,
        best_address.region,
        best_address.country,
        order_stats.first_order_ts,
        order_stats.last_order_ts,
        order_stats.days_since_last_order,
        order_stats.average_order_value,
        order_stats.average_days_between_orders,
        email_stats.last_email_event_ts,
        email_stats.email_open_rate_90d,
        email_stats.email_click_rate_90d,
        web_stats.last_web_event_ts,
        case_stats.last_service_contact_ts,
        case_stats.last_service_channel,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.rfm_segment,
        channels.preferred_channel,
        categories.top_product_category,
        next_best.next_best_product,
        next_best.next_best_product_name,
        churn.churn_risk,
        churn.churn_risk_band,
        churn.recency_points as churn_recency_points,
        churn.engagement_points as churn_engagement_points,
        churn.case_points as churn_case_points,
        as_of.as_of_ts as insights_as_of_ts,
        '{{ env_var("CDP_REPORTING_CURRENCY") }}' as reporting_currency,
        coalesce(order_stats.order_count, 0) as order_count,
        coalesce(order_stats.unconverted_order_count, 0) as unconverted_order_count,
        coalesce(order_stats.lifetime_value, cast(0 as decimal(18, 2))) as lifetime_value,
        coalesce(order_stats.total_spend, cast(0 as decimal(18, 2))) as total_spend,
        coalesce(email_stats.email_sends, 0) as email_sends,
        coalesce(email_stats.email_opens, 0) as email_opens,
        coalesce(email_stats.email_clicks, 0) as email_clicks,
        coalesce(email_stats.email_sends_90d, 0) as email_sends_90d,
        coalesce(email_stats.email_opens_90d, 0) as email_opens_90d,
        coalesce(email_stats.email_clicks_90d, 0) as email_clicks_90d,
        coalesce(web_stats.web_events, 0) as web_events,
        coalesce(web_stats.web_sessions, 0) as web_sessions,
        coalesce(web_stats.web_sessions_30d, 0) as web_sessions_30d,
        coalesce(case_stats.service_cases, 0) as service_cases,
        coalesce(case_stats.open_service_cases, 0) as open_service_cases
    from unified_individuals
    cross join as_of
    left join best_email using (unified_individual_id)
    left join best_phone using (unified_individual_id)
    left join best_address using (unified_individual_id)
    left join order_stats using (unified_individual_id)
    left join rfm using (unified_individual_id)
    left join email_stats using (unified_individual_id)
    left join web_stats using (unified_individual_id)
    left join case_stats using (unified_individual_id)
    left join channels using (unified_individual_id)
    left join categories using (unified_individual_id)
    left join next_best using (unified_individual_id)
    left join churn using (unified_individual_id)
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
