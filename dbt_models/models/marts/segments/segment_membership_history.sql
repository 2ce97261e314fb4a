{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/segment_membership_history/run={{ cdp_run_id() }}.parquet',
    tags=['marts', 'segments'],
) }}

-- Who entered and who left each segment in this run. Each run writes its own file, and
-- the membership before the run is rebuilt from every other run's events, so rerunning a
-- run (after a crash) rewrites its own events: each entry and exit is written once.
with

current_members as (
    select * from {{ ref('segment_membership') }}
),

past_events as (
    -- The history written by earlier runs (the lake is the store of record; the folder
    -- always holds at least an empty file, made when the models are generated).
    select *
    from
        {{ read_parquet_folder(env_var("CDP_DBT_WORKSPACE") ~ '/lake/marts/segment_membership_history') }}
    where
        unified_individual_id is not null
        and run_id != '{{ cdp_run_id() }}'
),

last_event as (
    select
        segment_name,
        unified_individual_id,
        event
    from past_events
    qualify row_number() over (
        partition by segment_name, unified_individual_id
        order by event_ts desc, run_id desc
    ) = 1
),

previous_members as (
    select
        segment_name,
        unified_individual_id
    from last_event
    where event = 'entered'
),

entered as (
    select
        segment_name,
        unified_individual_id
    from current_members
    where unified_individual_id is not null
    except
    select
        segment_name,
        unified_individual_id
    from previous_members
),

exited as (
    select
        segment_name,
        unified_individual_id
    from previous_members
    except
    select
        segment_name,
        unified_individual_id
    from current_members
),

events as (
    select
        segment_name,
        unified_individual_id,
        'entered' as event  -- noqa: RF04
    from entered
    union all
    select
        segment_name,
        unified_individual_id,
        'exited' as event  -- noqa: RF04
    from exited
),

final as (
    select
        segment_name,
        unified_individual_id,
        event,
        '{{ cdp_run_id() }}' as run_id,
        cast('{{ cdp_run_started() }}' as timestamp) as event_ts
    from events
    order by segment_name, unified_individual_id
)

select * from final
