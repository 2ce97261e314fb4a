{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_rfm_scores_aggregated_to_unified_individual.parquet',
) }}

-- Recency, frequency and monetary quintiles (1-5, 5 best) over the customers with at
-- least one revenue order, and the named segment they fall in (docs/insights.md). A
-- quintile keeps ties together (macro tied_quintile), so two customers with the same
-- order count always share an f_score.
with

order_stats as (
    select * from {{ ref('int_sales_orders_aggregated_to_unified_individual') }}
),

customers as (
    select
        unified_individual_id,
        days_since_last_order,
        order_count,
        lifetime_value
    from order_stats
    where order_count > 0 and days_since_last_order is not null
),

scored as (
    select
        unified_individual_id,
        {{ tied_quintile('days_since_last_order desc') }} as r_score,
        {{ tied_quintile('order_count asc') }} as f_score,
        {{ tied_quintile('lifetime_value asc') }} as m_score
    from customers
),

final as (
    select
        unified_individual_id,
        r_score,
        f_score,
        m_score,
        {%- set text = cdp_type('varchar') %}
        cast(r_score as {{ text }}) || cast(f_score as {{ text }}) || cast(m_score as {{ text }}) as rfm_cell,
        case
            when r_score >= 4 and f_score >= 4 and m_score >= 4 then 'champions'
            when r_score >= 3 and f_score >= 4 then 'loyal'
            when r_score >= 4 and f_score <= 2 then 'new'
            when r_score >= 4 then 'promising'
            when r_score <= 2 and f_score >= 4 and m_score >= 4 then 'cannot_lose'
            when r_score <= 2 and f_score >= 3 then 'at_risk'
            when r_score <= 2 then 'hibernating'
            else 'needs_attention'
        end as rfm_segment
    from scored
)

select * from final
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
