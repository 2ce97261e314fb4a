{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_next_best_products_aggregated_to_unified_individual.parquet',
) }}

{%- set pairs_per_product = env_var('CDP_RECOMMENDATION_PAIRS', '25') | int -%}
{#- The person × candidate sums are aggregated in this many slices of people (`scored`).
    Nearly every such pair is its own group (at 1M customers, 39.5 million rows made 35.8
    million groups), and one hash table that size was two thirds of the model's CPU time:
    6.2 s (11.8 CPU-s) as one aggregation, 4.1 s (7.7 CPU-s) in 16 slices, 4.1 in 32,
    4.5 in 64; the same rows. -#}
{%- set person_slices = 16 -%}

-- The product to offer each unified individual next: among the products bought by
-- people who bought what this person bought (int_product_affinities_computed), and never
-- one this person already bought, the one with the most co-buyers summed over the
-- person's products; ties go to the higher summed lift, then the lower sku. Each product
-- the person bought contributes its insights.recommendation_pairs strongest pairings.
-- People and products are numbered first: the person × candidate rows (hundreds per
-- person) then join, group and rank on integers, not strings (3.7× faster at 100k).
with

lines as (
    select * from {{ ref('int_order_lines_attributed') }}
),

affinities as (
    select * from {{ ref('int_product_affinities_computed') }}
    -- 0 takes every pairing
    where {{ pairs_per_product }} = 0 or pair_rank <= {{ pairs_per_product }}
),

product_names as (
    select
        sku,
        min(product_name) as product_name
    from lines
    group by sku
),

products as (
    select
        sku,
        product_name,
        -- numbered in sku order, so the lower number is the lower sku
        cast(row_number() over (order by sku) as integer) as product_no
    from product_names
),

people as (
    select
        unified_individual_id,
        cast(row_number() over (order by unified_individual_id) as integer) as person_no
    from (select distinct unified_individual_id from lines) as buyers
),

bought as (
    select distinct
        people.person_no,
        products.product_no
    from lines
    inner join people on lines.unified_individual_id = people.unified_individual_id
    inner join products on lines.sku = products.sku
),

pairs as (
    select
        product.product_no,
        paired.product_no as paired_no,
        affinities.co_buyers,
        affinities.lift,
        -- the lift (four decimals) in whole units of 0.0001: each candidate sums integers
        -- (summing decimals and converting every sum for the pick took a third of the
        -- model's time); null past a bigint, far beyond what the digits check lets through
        try_cast(cast(affinities.lift as decimal(38, 4)) * 10000 as bigint) as lift_units
    from affinities
    inner join products as product on affinities.product_sku = product.sku
    inner join products as paired on affinities.paired_sku = paired.sku
),

scored as (
    {%- for slice in range(person_slices) %}
        select
            bought.person_no,
            pairs.paired_no as product_no,
            cast(sum(pairs.co_buyers) as bigint) as affinity_co_buyers,
            cast(sum(pairs.lift_units) as bigint) as affinity_lift_units
        from bought
        inner join pairs on bought.product_no = pairs.product_no
        where bought.person_no % {{ person_slices }} = {{ slice }}
        group by bought.person_no, pairs.paired_no
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

candidates as (
    select scored.*
    from scored
    left join bought as already_bought
        on
            scored.person_no = already_bought.person_no
            and scored.product_no = already_bought.product_no
    -- never a product the person already bought
    where already_bought.product_no is null
),

-- The largest sums any person can score, cast to their digits (null past them, on both
-- engines): a catalogue or a history too big for the pick stops the build with a message
-- instead of picking wrongly. A checked cast per candidate row cost 2.4 s at a million
-- people; this one row costs a few ms.
products_per_person as (
    select
        person_no,
        count(*) as products
    from bought
    group by person_no
),

most_bought as (
    select max(products) as products from products_per_person
),

digits as (
    select
        count(*) as pairs,
        try_cast(
            cast(max(pairs.co_buyers) as decimal(38, 0)) * max(most_bought.products)
            as decimal(16, 0)
        ) as co_buyers,
        try_cast(
            cast(max(pairs.lift) as decimal(38, 4)) * 10000 * max(most_bought.products)
            as decimal(14, 0)
        ) as lift,
        try_cast(max(pairs.paired_no) as decimal(8, 0)) as product_no
    from pairs
    cross join most_bought
),

-- The pick as one number per candidate: co-buyers, then lift (in units of 0.0001), then
-- the lower product number, in that order of significance, so each person's best is a
-- plain max (a max_by over structs was a third of the model's time at a million people:
-- 10.5 -> 7.0 s; summing the lift as integers, then 7.5 -> 5.2 s). Each part gets room
-- for the largest sum `digits` allows. A bigint holds all three while their rooms
-- multiplied stay below 9e18 (at a million people 1,128 x 519,387 x 501, about 3e14):
-- over the 34 million candidate rows of the 1M increment the whole model then took 9.1
-- to 10.5 CPU-s against 10.1 to 12.1 with decimals, for the same picks. Past it, a
-- decimal(38, 0) whose parts take 16, 14 and 8 digits.
radix as (
    select
        fits,
        cast(product_no + 1 as bigint) as lift_unit,
        case when fits then cast((lift + 1) * (product_no + 1) as bigint) end as co_unit
    from (
        select
            *,
            coalesce(
                cast(co_buyers + 1 as double) * cast(lift + 1 as double)
                * cast(product_no + 1 as double) < 9e18,
                false
            ) as fits
        from digits
    ) as bounds
),

ranked as (
    select
        candidates.person_no,
        max(
            case
                when radix.fits
                    then
                        candidates.affinity_co_buyers * radix.co_unit
                        + candidates.affinity_lift_units * radix.lift_unit
                        + (radix.lift_unit - 1 - candidates.product_no)
            end
        ) as pick,
        max(
            case
                when not radix.fits
                    then
                        cast(candidates.affinity_co_buyers as decimal(38, 0))
                        * cast('10000000000000000000000' as decimal(38, 0))
                        + cast(candidates.affinity_lift_units as decimal(38, 0))
                        * cast(100000000 as decimal(38, 0))
                        + (99999999 - cast(candidates.product_no as decimal(38, 0)))
            end
        ) as wide_pick
    from candidates
    cross join radix
    group by candidates.person_no
),

best as (
    select
        ranked.person_no,
        case
            when radix.fits
                then cast(radix.lift_unit - 1 - ranked.pick % radix.lift_unit as integer)
            else 99999999 - cast(ranked.wide_pick % 100000000 as integer)
        end as product_no
    from ranked
    cross join digits
    cross join radix
    -- (DuckDB may check the one row of digits before the join: with no pairs at all,
    -- its sums are null and there is nothing to pick)
    where {{ cdp_check(
        'digits.pairs = 0 or (digits.co_buyers is not null and digits.lift is not null'
        ~ ' and digits.product_no is not null)',
        'next best products: more products, co-buyers or lift than the pick has digits for '
        ~ '(docs/insights.md)'
    ) }}
),

-- the winner's score again, from the person's own products only
best_scored as (
    select
        best.person_no,
        best.product_no,
        cast(sum(pairs.co_buyers) as bigint) as affinity_co_buyers,
        sum(pairs.lift) as affinity_lift
    from best
    inner join bought on best.person_no = bought.person_no
    inner join pairs
        on
            bought.product_no = pairs.product_no
            and best.product_no = pairs.paired_no
    group by best.person_no, best.product_no
),

final as (
    select
        people.unified_individual_id,
        products.sku as next_best_product,
        products.product_name as next_best_product_name,
        best_scored.affinity_co_buyers as next_best_product_co_buyers,
        best_scored.affinity_lift as next_best_product_lift
    from best_scored
    inner join people on best_scored.person_no = people.person_no
    inner join products on best_scored.product_no = products.product_no
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
