{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_engagement_webs_aggregated_to_unified_individual.parquet',
) }}

-- Web activity per unified individual (its accounts and linked cookies): lifetime events
-- and sessions, sessions in the 30 days up to as_of, and sessions in the last 90 days
-- against the 90 before (the engagement trend of churn_risk).
with

web_events as (
    select * from {{ ref('int_engagement_webs_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

counted as (
    select
        web_events.*,
        as_of.as_of_ts
    from web_events
    cross join as_of
    where
        web_events.unified_individual_id is not null
        and (web_events.event_ts is null or web_events.event_ts <= as_of.as_of_ts)
),

final as (
    select
        unified_individual_id,
        count(*) as web_events,
        count(distinct session_id) as web_sessions,
        count(distinct session_id) filter (where {{ in_window('event_ts', 30) }}) as web_sessions_30d,
        count(distinct session_id) filter (where {{ in_window('event_ts', 90) }}) as web_sessions_90d,
        count(distinct session_id) filter (
            where {{ in_window('event_ts', 90, offset=90) }}
        ) as web_sessions_previous_90d,
        max(event_ts) as last_web_event_ts
    from counted
    group by unified_individual_id
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
