{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_engagement_emails_aggregated_to_unified_individual.parquet',
) }}

-- Newsletter engagement per unified individual: lifetime counts, and open and click
-- rates over the 90 days up to as_of (opens / sends, clicks / sends; null without a send).
with

email_events as (
    select * from {{ ref('int_engagement_emails_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

counted as (
    select
        email_events.*,
        as_of.as_of_ts
    from email_events
    cross join as_of
    where
        email_events.unified_individual_id is not null
        and (email_events.event_ts is null or email_events.event_ts <= as_of.as_of_ts)
),

per_individual as (
    select
        unified_individual_id,
        count(*) filter (where event_type = 'send') as email_sends,
        count(*) filter (where event_type = 'open') as email_opens,
        count(*) filter (where event_type = 'click') as email_clicks,
        count(*) filter (where event_type = 'send' and {{ in_window('event_ts', 90) }}) as email_sends_90d,
        count(*) filter (where event_type = 'open' and {{ in_window('event_ts', 90) }}) as email_opens_90d,
        count(*) filter (where event_type = 'click' and {{ in_window('event_ts', 90) }}) as email_clicks_90d,
        -- opens and clicks: what the person did, for the engagement trend of churn_risk
        count(*) filter (
            where event_type in ('open', 'click') and {{ in_window('event_ts', 90) }}
        ) as email_interactions_90d,
        count(*) filter (
            where event_type in ('open', 'click') and {{ in_window('event_ts', 90, offset=90) }}
        ) as email_interactions_previous_90d,
        max(event_ts) as last_email_event_ts
    from counted
    group by unified_individual_id
),

final as (
    select
        *,
        cast(
            case when email_sends_90d > 0 then round(email_opens_90d / email_sends_90d, 4) end
            as decimal(9, 4)
        ) as email_open_rate_90d,
        cast(
            case when email_sends_90d > 0 then round(email_clicks_90d / email_sends_90d, 4) end
            as decimal(9, 4)
        ) as email_click_rate_90d
    from per_individual
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
