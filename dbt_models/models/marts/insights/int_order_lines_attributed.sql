{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_order_lines_attributed.parquet',
) }}

-- Every line of a revenue order placed up to as_of, with the buyer's unified individual
-- and the product's category: what people bought, for top_product_category and
-- next_best_product.
with

lines as (
    select * from {{ ref('int_sales_order_lines_deduplicated') }}
),

orders as (
    select * from {{ ref('int_sales_orders_attributed') }}
),

products as (
    select * from {{ ref('int_products_deduplicated') }}
),

as_of as (
    select * from {{ ref('int_insights_as_of') }}
),

-- one product row per sku (two sources may both describe it: the latest wins)
product_by_sku as (
    select
        sku,
        name as product_name,
        category
    from products
    where sku is not null
    qualify row_number() over (
        partition by sku order by updated_ts desc nulls last, source_name asc
    ) = 1
),

final as (
    select
        orders.unified_individual_id,
        lines.source_name,
        lines.source_record_id,
        lines.order_id,
        lines.sku,
        product_by_sku.product_name,
        product_by_sku.category,
        orders.order_ts,
        coalesce(lines.quantity, 1) as quantity
    from lines
    inner join orders
        on lines.order_id = orders.order_id
    cross join as_of
    left join product_by_sku
        on lines.sku = product_by_sku.sku
    where
        lines.source_name is not null
        and lines.sku is not null
        and orders.unified_individual_id is not null
        and orders.is_revenue
        and (orders.order_ts is null or orders.order_ts <= as_of.as_of_ts)
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by source_name, source_record_id
