-- depends_on: {{ ref('int_individuals_deduplicated') }}
-- depends_on: {{ ref('int_contact_point_emails_deduplicated') }}
-- depends_on: {{ ref('int_contact_point_phones_deduplicated') }}
-- depends_on: {{ ref('int_contact_point_addresses_deduplicated') }}
-- depends_on: {{ source('identity', 'unified_link_individual') }}
{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_unified_individuals_changed.parquet',
    tags=['marts'],
) }}

{%- set increment = marts_increment() %}

-- The unified individuals whose golden record (unified_individual) and contact points
-- (unified_contact_point) this run computes again; the others keep last run's rows.
-- A full build recomputes everyone (reason `full`). An increment recomputes a person
-- when identity resolution changed their cluster or made it (reason `identity`: its
-- updated_run_id differs from the one last run's unified_individual holds), or when one
-- of their person records has a row in a load the marts have not seen (reason `records`:
-- a new or updated name, email, phone or address). The rest of a person's golden record
-- depends on nothing else, so the kept rows are what a full build would write.
with

clusters as (
    select
        unified_individual_id,
        updated_run_id
    from {{ source('identity', 'identity_clusters') }}
),

{% if increment %}
    previous as (
        select
            unified_individual_id,
            updated_run_id
        from {{ previous_output('unified_individual') }}
    ),

    new_loads as (
        select * from {{ new_loads_relation(increment) }}
    ),

    {%- set harmonised = [
        'int_individuals_deduplicated',
        'int_contact_point_emails_deduplicated',
        'int_contact_point_phones_deduplicated',
        'int_contact_point_addresses_deduplicated',
    ] %}

    changed_records as (
        {%- for model in harmonised %}
            select
                rows.source_name,
                rows.source_record_id
            from {{ ref(model) }} as rows
            inner join new_loads
                on rows.source_name = new_loads.source_name and rows._load_id = new_loads.load_id
            {% if not loop.last %}union{% endif %}
        {%- endfor %}
    ),

    by_identity as (
        select clusters.unified_individual_id
        from clusters
        left join previous using (unified_individual_id)
        where
            previous.unified_individual_id is null
            or previous.updated_run_id is distinct from clusters.updated_run_id
    ),

    by_records as (
        select distinct links.unified_individual_id
        from {{ source('identity', 'unified_link_individual') }} as links
        inner join changed_records using (source_name, source_record_id)
        where links.record_kind = 'person'
    ),

    final as (
        select
            unified_individual_id,
            'identity' as reason
        from by_identity
        union all
        select
            by_records.unified_individual_id,
            'records' as reason
        from by_records
        anti join by_identity using (unified_individual_id)
    )
{% else %}
    final as (
        select
            unified_individual_id,
            'full' as reason
        from clusters
    )
{% endif %}

select * from final
order by unified_individual_id
