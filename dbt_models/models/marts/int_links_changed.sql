-- depends_on: {{ source('identity', 'unified_link_individual') }}
{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_links_changed.parquet',
) }}

{%- set increment = marts_increment() %}

-- The person records and cookies whose unified individual is not the one the marts' last
-- build read (lake/marts/_seen, cdp.harmonise.increments.keep_seen): linked since, linked
-- to another person, or no longer linked. Activity naming them is attributed again on an
-- increment (macro activity_again). Empty on a full build.
with

{% if increment %}
    links as (
        select
            record_kind,
            source_name,
            source_record_id,
            unified_individual_id
        from {{ source('identity', 'unified_link_individual') }}
    ),

    seen as (
        select
            record_kind,
            source_name,
            source_record_id,
            unified_individual_id
        from {{ seen_input('unified_link_individual') }}
    ),

    final as (
        select
            record_kind,
            source_name,
            source_record_id
        from links
        full outer join seen using (record_kind, source_name, source_record_id)
        where links.unified_individual_id is distinct from seen.unified_individual_id
    )
{% else %}
    final as (
        select
            cast(null as string) as record_kind,
            cast(null as string) as source_name,
            cast(null as string) as source_record_id
        where false
    )
{% endif %}

select * from final
order by record_kind, source_name, source_record_id
