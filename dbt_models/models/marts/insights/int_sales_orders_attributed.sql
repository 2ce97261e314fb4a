{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_sales_orders_attributed.parquet',
) }}

{%- set increment = marts_increment() %}
{#- what an increment reads to find the rows to attribute again (activity_again);
    named at parse time only, so unit tests need not give them -#}
{%- do parse_time_refs(['int_links_changed', 'int_contact_keys_changed']) %}

{%- set reporting = env_var('CDP_REPORTING_CURRENCY') -%}

-- Every order with its unified individual (macro attribute_to_individual), whether it
-- counts as revenue, and its amount in the reporting currency (seed currency_rates).
with

{{ activity_again('orders', ref('int_sales_orders_deduplicated'), increment) }}

links as {{ cdp_inlined() }} (
    {{ links_for('orders', increment) }}
),

contact_keys as {{ cdp_inlined() }} (
    {{ keys_for('orders', increment) }}
),

rates as (
    select * from {{ ref('currency_rates') }}
),

attributed as (
    {{ attribute_to_individual('orders', 'links', 'contact_keys') }}
),

reporting_rate as (
    select rate_to_usd
    from rates
    where currency = '{{ reporting }}'
),

final as (
    select
        attributed.*,
        '{{ reporting }}' as reporting_currency,
        -- cancelled and returned orders earned nothing
        coalesce(lower(attributed.status) not in ('cancelled', 'returned'), true) as is_revenue,
        order_rate.currency is not null and reporting_rate.rate_to_usd is not null as is_converted,
        -- rounded to the cent per order, then summed as decimals: the same total every run
        cast(
            round(
                cast(attributed.amount as decimal(18, 2))
                * order_rate.rate_to_usd
                / reporting_rate.rate_to_usd,
                2
            ) as decimal(18, 2)
        ) as amount_reporting
    from attributed
    left join rates as order_rate
        on upper(attributed.currency) = order_rate.currency
    left join reporting_rate on true
),

-- on an increment, only the rows attributed again that differ from the last
-- build's, as a new part (macros/increment.sql)
{{ attributed_rows('int_sales_orders_attributed', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
