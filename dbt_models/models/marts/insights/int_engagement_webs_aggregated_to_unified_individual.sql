{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_engagement_webs_aggregated_to_unified_individual.parquet',
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

-- One row per session first: counting distinct sessions four times over every event took
-- 0.95 s at 1M customers, against 0.37 s. A session counts in a window when any of its
-- events falls in it.
sessions as (
    select
        unified_individual_id,
        session_id,
        count(*) as events,
        bool_or({{ in_window('event_ts', 30) }}) as in_30d,
        bool_or({{ in_window('event_ts', 90) }}) as in_90d,
        bool_or({{ in_window('event_ts', 90, offset=90) }}) as in_previous_90d,
        max(event_ts) as last_event_ts
    from counted
    group by unified_individual_id, session_id
),

final as (
    select
        unified_individual_id,
        cast(sum(events) as bigint) as web_events,
        -- (the events without a session are one group here, and no session)
        count(session_id) as web_sessions,
        count(session_id) filter (where in_30d) as web_sessions_30d,
        count(session_id) filter (where in_90d) as web_sessions_90d,
        count(session_id) filter (where in_previous_90d) as web_sessions_previous_90d,
        max(last_event_ts) as last_web_event_ts
    from sessions
    group by unified_individual_id
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
