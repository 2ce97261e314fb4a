{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_product_categories_aggregated_to_unified_individual.parquet',
) }}

-- The product category each unified individual buys most: the most units over its
-- revenue orders; a tie goes to the category bought most recently, then alphabetically.
with

lines as (
    select * from {{ ref('int_order_lines_attributed') }}
),

per_category as (
    select
        unified_individual_id,
        category,
        sum(quantity) as units,
        max(order_ts) as last_bought_ts
    from lines
    where category is not null
    group by unified_individual_id, category
),

final as (
    select
        unified_individual_id,
        {{ cdp_first('category', [
            ('units', 'desc', 'number'), ('last_bought_ts', 'desc', 'timestamp'), ('category', 'asc', 'text')
        ]) }} as top_product_category,
        max(units) as top_product_category_units
    from per_category
    group by unified_individual_id
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
