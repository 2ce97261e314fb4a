{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_service_cases_aggregated_to_unified_individual.parquet',
) }}

-- Customer service per unified individual: cases, the ones still open (any status but
-- closed), and the last contact (the latest time a case was opened or closed).
with

cases as (
    select * from {{ ref('int_service_cases_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

counted as (
    select
        cases.*,
        greatest(cases.opened_ts, cases.closed_ts) as contact_ts
    from cases
    cross join as_of
    where
        cases.unified_individual_id is not null
        and (cases.opened_ts is null or cases.opened_ts <= as_of.as_of_ts)
),

final as (
    select
        unified_individual_id,
        count(*) as service_cases,
        count(*) filter (where status is distinct from 'closed') as open_service_cases,
        max(contact_ts) as last_service_contact_ts,
        {{ cdp_first('channel', [('contact_ts', 'desc', 'timestamp'), ('channel', 'asc', 'text')]) }}
            as last_service_channel
    from counted
    group by unified_individual_id
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
