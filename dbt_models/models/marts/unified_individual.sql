{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/unified_individual.parquet',
    tags=['marts'],
) }}

-- One row per unified individual, with its name and birth date reconciled from its
-- records: the most frequent value, ties to the most recently updated record.
with

clusters as (
    select * from {{ source('identity', 'identity_clusters') }}
),

links as (
    select * from {{ source('identity', 'unified_link_individual') }}
),

individuals as (
    select * from {{ ref('int_individuals_deduplicated') }}
),

members as (
    select
        links.unified_individual_id,
        links.source_name,
        individuals.first_name,
        individuals.last_name,
        individuals.birth_date,
        individuals.updated_ts
    from links
    inner join individuals
        on
            links.source_name = individuals.source_name
            and links.source_record_id = individuals.source_record_id
),

{% for field in ['first_name', 'last_name', 'birth_date'] %}
    best_{{ field }} as (
        select
            unified_individual_id,
            {{ field }}
        from (
            select
                unified_individual_id,
                {{ field }},
                count(*) as n,
                max(updated_ts) as latest
            from members
            where {{ field }} is not null
            group by unified_individual_id, {{ field }}
        )
        qualify row_number() over (
            partition by unified_individual_id order by n desc, latest desc nulls last, {{ field }} asc
        ) = 1
    ),
{% endfor %}

counts as (
    select
        unified_individual_id,
        count(*) as record_count,
        count(distinct source_name) as source_count,
        list(distinct source_name order by source_name) as sources
    from links
    where record_kind = 'person'
    group by unified_individual_id
),

final as (
    select
        clusters.unified_individual_id,
        counts.sources,
        best_first_name.first_name,
        best_last_name.last_name,
        best_birth_date.birth_date,
        clusters.created_run_id,
        clusters.updated_run_id,
        coalesce(counts.record_count, 0) as record_count,
        coalesce(counts.source_count, 0) as source_count
    from clusters
    left join counts using (unified_individual_id)
    left join best_first_name using (unified_individual_id)
    left join best_last_name using (unified_individual_id)
    left join best_birth_date using (unified_individual_id)
)

select * from final
