{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_channel_interactions_aggregated_to_unified_individual.parquet',
) }}

-- The channel each unified individual uses most. An interaction is something the person
-- did: an email open or click (email), a web session (web), an order (its channel: web,
-- app, store, ...), a service case (its channel: phone, email, chat, ...). The preferred
-- channel has the most interactions up to as_of; a tie goes to the channel used most
-- recently, then to the first in alphabetical order.
with

email_events as (
    select * from {{ ref('int_engagement_emails_attributed') }}
),

web_events as (
    select * from {{ ref('int_engagement_webs_attributed') }}
),

orders as (
    select * from {{ ref('int_sales_orders_attributed') }}
),

cases as (
    select * from {{ ref('int_service_cases_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

interactions as (
    select
        unified_individual_id,
        'email' as channel,
        event_ts as interaction_ts
    from email_events
    where event_type in ('open', 'click')

    union all

    select
        unified_individual_id,
        'web' as channel,
        min(event_ts) as interaction_ts
    from web_events
    group by unified_individual_id, session_id

    union all

    select
        unified_individual_id,
        coalesce(lower(channel), 'unknown') as channel,
        order_ts as interaction_ts
    from orders

    union all

    select
        unified_individual_id,
        coalesce(lower(channel), 'unknown') as channel,
        opened_ts as interaction_ts
    from cases
),

per_channel as (
    select
        interactions.unified_individual_id,
        interactions.channel,
        count(*) as interactions,
        max(interactions.interaction_ts) as last_interaction_ts
    from interactions
    cross join as_of
    where
        interactions.unified_individual_id is not null
        and (interactions.interaction_ts is null or interactions.interaction_ts <= as_of.as_of_ts)
    group by interactions.unified_individual_id, interactions.channel
),

final as (
    select
        unified_individual_id,
        sum(interactions) as channel_interactions,
        {{ cdp_first('channel', [
            ('interactions', 'desc', 'number'),
            ('last_interaction_ts', 'desc', 'timestamp'),
            ('channel', 'asc', 'text')
        ]) }} as preferred_channel,
        {{ cdp_map_agg('channel', 'interactions') }} as interactions_by_channel
    from per_channel
    group by unified_individual_id
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
