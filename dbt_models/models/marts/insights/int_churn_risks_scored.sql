{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_churn_risks_scored.parquet',
) }}

-- A transparent churn score (0-100) for every customer with a revenue order, as the sum
-- of three parts kept as columns (docs/insights.md):
--   recency_points (0-50): days since the last order against the person's usual gap
--     between orders (expected_gap_days), 50 at twice that gap or more;
--   engagement_points (0-25): email opens and clicks plus web sessions in the last 90
--     days against the 90 before: the share lost, 25 when it fell to nothing, 10 when
--     there was none in either window;
--   case_points (0-25): 10 per open service case.
-- Band: high from 60, medium from 30, low below.
with

order_stats as (
    select * from {{ ref('int_sales_orders_aggregated_to_unified_individual') }}
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

-- a one-order customer has no gap of their own: the median over repeat customers, else a year
usual_gap as (
    select coalesce(median(average_days_between_orders), 365) as median_gap_days
    from order_stats
    where average_days_between_orders > 0
),

inputs as (
    select
        order_stats.unified_individual_id,
        order_stats.days_since_last_order,
        cast(
            greatest(
                coalesce(nullif(order_stats.average_days_between_orders, 0), usual_gap.median_gap_days),
                1
            ) as decimal(9, 1)
        ) as expected_gap_days,
        coalesce(email_stats.email_interactions_90d, 0)
        + coalesce(web_stats.web_sessions_90d, 0) as engagement_90d,
        coalesce(email_stats.email_interactions_previous_90d, 0)
        + coalesce(web_stats.web_sessions_previous_90d, 0) as engagement_previous_90d,
        coalesce(case_stats.open_service_cases, 0) as open_service_cases
    from order_stats
    cross join usual_gap
    left join email_stats using (unified_individual_id)
    left join web_stats using (unified_individual_id)
    left join case_stats using (unified_individual_id)
    where order_stats.order_count > 0 and order_stats.days_since_last_order is not null
),

points as (
    select
        *,
        cast(
            least(50, round(25 * greatest(days_since_last_order, 0) / expected_gap_days)) as integer
        ) as recency_points,
        cast(
            case
                when engagement_90d = 0 and engagement_previous_90d = 0 then 10
                when engagement_90d >= engagement_previous_90d then 0
                else round(25 * (engagement_previous_90d - engagement_90d) / engagement_previous_90d)
            end as integer
        ) as engagement_points,
        cast(least(25, 10 * open_service_cases) as integer) as case_points
    from inputs
),

final as (
    select
        unified_individual_id,
        days_since_last_order,
        expected_gap_days,
        engagement_90d,
        engagement_previous_90d,
        open_service_cases,
        recency_points,
        engagement_points,
        case_points,
        recency_points + engagement_points + case_points as churn_risk,
        case
            when recency_points + engagement_points + case_points >= 60 then 'high'
            when recency_points + engagement_points + case_points >= 30 then 'medium'
            else 'low'
        end as churn_risk_band
    from points
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
