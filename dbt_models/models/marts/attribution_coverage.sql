{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/attribution_coverage.parquet',
    tags=['marts'],
) }}

-- How the rows of each activity object found their unified individual (the
-- attributed_by of the *_attributed models): one row per object and way, with its rows.
-- Rows that matched nobody (unmatched, ambiguous) are kept in those models with a null
-- id; this is where they are counted.
with

orders as (
    select * from {{ ref('int_sales_orders_attributed') }}
),

email_events as (
    select * from {{ ref('int_engagement_emails_attributed') }}
),

web_events as (
    select * from {{ ref('int_engagement_webs_attributed') }}
),

cases as (
    select * from {{ ref('int_service_cases_attributed') }}
),

unioned as (
    select
        'sales_order' as object_name,
        attributed_by
    from orders
    union all
    select
        'engagement_email' as object_name,
        attributed_by
    from email_events
    union all
    select
        'engagement_web' as object_name,
        attributed_by
    from web_events
    union all
    select
        'service_case' as object_name,
        attributed_by
    from cases
),

final as (
    select
        object_name,
        attributed_by,
        count(*) as row_count,
        attributed_by not in ('unmatched', 'ambiguous') as is_matched
    from unioned
    group by object_name, attributed_by
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by object_name, attributed_by
