with

unioned as (
    select * from {{ ref('int_individuals_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id']) }}
),

final as (
    select *
    from latest
)

select * from final
