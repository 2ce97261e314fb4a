{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_product_affinities_computed.parquet',
) }}

-- Co-purchase affinity between two products: how many unified individuals bought both
-- (co_buyers), and the lift, co_buyers × buyers / (buyers of A × buyers of B): above 1
-- when buying A makes buying B likelier than chance; pair_rank orders A's pairings, the
-- strongest first. One row per ordered pair (A, B).
with

lines as (
    select * from {{ ref('int_order_lines_attributed') }}
),

bought as (
    select distinct
        unified_individual_id,
        sku
    from lines
),

buyers as (
    select
        sku,
        count(*) as buyers
    from bought
    group by sku
),

everyone as (
    select count(distinct unified_individual_id) as buyers from bought
),

pairs as (
    select
        a.sku as product_sku,
        b.sku as paired_sku,
        count(*) as co_buyers
    from bought as a
    inner join bought as b
        on
            a.unified_individual_id = b.unified_individual_id
            and a.sku <> b.sku
    group by a.sku, b.sku
),

final as (
    select
        pairs.product_sku,
        pairs.paired_sku,
        pairs.co_buyers,
        buyers_a.buyers as product_buyers,
        buyers_b.buyers as paired_buyers,
        cast(
            round(pairs.co_buyers * everyone.buyers / (buyers_a.buyers * buyers_b.buyers), 4)
            as decimal(18, 4)
        ) as lift
    from pairs
    inner join buyers as buyers_a on pairs.product_sku = buyers_a.sku
    inner join buyers as buyers_b on pairs.paired_sku = buyers_b.sku
    cross join everyone
),

ranked as (
    select
        *,
        -- B's rank among A's pairings: the next best product reads the strongest ones
        row_number() over (
            partition by product_sku order by co_buyers desc, lift desc, paired_sku asc
        ) as pair_rank
    from final
)

select * from ranked
-- a fixed row order: two runs on the same data write the same bytes
order by product_sku, paired_sku
