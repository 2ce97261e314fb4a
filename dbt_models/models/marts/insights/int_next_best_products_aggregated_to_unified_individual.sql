{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/int_next_best_products_aggregated_to_unified_individual.parquet',
) }}

-- The product to offer each unified individual next: among the products bought by
-- people who bought what this person bought (int_product_affinities_computed), and never
-- one this person already bought, the one with the most co-buyers summed over the
-- person's products; ties go to the higher summed lift, then the lower sku.
with

lines as (
    select * from {{ ref('int_order_lines_attributed') }}
),

affinities as (
    select * from {{ ref('int_product_affinities_computed') }}
),

bought as (
    select distinct
        unified_individual_id,
        sku
    from lines
),

product_names as (
    select
        sku,
        min(product_name) as product_name
    from lines
    group by sku
),

candidates as (
    select
        bought.unified_individual_id,
        affinities.paired_sku as sku,
        sum(affinities.co_buyers) as affinity_co_buyers,
        sum(affinities.lift) as affinity_lift
    from bought
    inner join affinities
        on bought.sku = affinities.product_sku
    left join bought as already_bought
        on
            bought.unified_individual_id = already_bought.unified_individual_id
            and affinities.paired_sku = already_bought.sku
    -- never a product the person already bought
    where already_bought.sku is null
    group by bought.unified_individual_id, affinities.paired_sku
),

final as (
    select
        candidates.unified_individual_id,
        candidates.sku as next_best_product,
        product_names.product_name as next_best_product_name,
        candidates.affinity_co_buyers as next_best_product_co_buyers,
        candidates.affinity_lift as next_best_product_lift
    from candidates
    left join product_names using (sku)
    qualify row_number() over (
        partition by candidates.unified_individual_id
        order by candidates.affinity_co_buyers desc, candidates.affinity_lift desc, candidates.sku asc
    ) = 1
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
