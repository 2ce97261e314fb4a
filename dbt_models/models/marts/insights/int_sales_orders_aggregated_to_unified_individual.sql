{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_sales_orders_aggregated_to_unified_individual.parquet',
) }}

-- Order insights per unified individual, over its revenue orders (not cancelled or
-- returned) placed up to as_of. Amounts are in the reporting currency; an order in a
-- currency missing from the seed currency_rates is counted in unconverted_order_count
-- and left out of every amount.
with

orders as (
    select * from {{ ref('int_sales_orders_attributed') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

counted as (
    select
        orders.*,
        as_of.as_of_ts
    from orders
    cross join as_of
    where
        orders.unified_individual_id is not null
        and orders.is_revenue
        and (orders.order_ts is null or orders.order_ts <= as_of.as_of_ts)
),

per_individual as (
    select
        unified_individual_id,
        count(*) as order_count,
        count(*) filter (where not is_converted) as unconverted_order_count,
        count(amount_reporting) as valued_order_count,
        coalesce(sum(amount_reporting), 0) as lifetime_value,
        min(order_ts) as first_order_ts,
        max(order_ts) as last_order_ts,
        max(as_of_ts) as as_of_ts
    from counted
    group by unified_individual_id
),

final as (
    select
        unified_individual_id,
        order_count,
        unconverted_order_count,
        first_order_ts,
        last_order_ts,
        cast(lifetime_value as decimal(18, 2)) as lifetime_value,
        cast(lifetime_value as decimal(18, 2)) as total_spend,
        cast(
            case when valued_order_count > 0 then round(lifetime_value / valued_order_count, 2) end
            as decimal(18, 2)
        ) as average_order_value,
        -- the person's usual gap between orders: the span of their orders over the gaps in it
        cast(
            case
                when order_count > 1
                    then round(
                        {{ cdp_date_diff('day', 'cast(first_order_ts as date)', 'cast(last_order_ts as date)') }}
                        / (order_count - 1),
                        1
                    )
            end as decimal(9, 1)
        ) as average_days_between_orders,
        {{ cdp_date_diff('day', 'cast(last_order_ts as date)', 'cast(as_of_ts as date)') }} as days_since_last_order
    from per_individual
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
