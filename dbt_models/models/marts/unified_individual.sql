-- depends_on: {{ ref('int_unified_individuals_changed') }}
{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/unified_individual.parquet',
    tags=['marts'],
) }}

{#- field -> the column its candidate values are grouped by, and whether it is a name -#}
{%- set fields = {
    'first_name': {'key': 'first_name_key', 'is_name': true},
    'last_name': {'key': 'last_name_key', 'is_name': true},
    'birth_date': {'key': 'birth_date', 'is_name': false},
    'gender': {'key': 'gender', 'is_name': false},
} -%}
{%- set increment = marts_increment() %}

-- One row per unified individual (a cluster of identity resolution), with its golden
-- record reconciled field by field from its source person records, by the rule cdp.yml
-- `reconciliation:` names for the field (macro reconcile_order_by): most_recent,
-- most_frequent or source_priority. Names are compared by their folded key (JOHN and
-- John are one value), shown in proper case, and:
--   - a placeholder first name (Resident, Son: first_name_is_placeholder) never wins;
--   - a nickname never wins over the formal name it stands for when the person's
--     records hold both (Bob and Robert: Robert).
-- An increment computes only the people int_unified_individuals_changed lists and keeps
-- last run's rows of everyone else who is still a unified individual.
with

clusters as (
    select * from {{ source('identity', 'identity_clusters') }}
    {%- if increment %}
        semi join {{ ref('int_unified_individuals_changed') }} as changed
            using (unified_individual_id)
    {%- endif %}
),

links as (
    select * from {{ source('identity', 'unified_link_individual') }}
    {%- if increment %}
        semi join {{ ref('int_unified_individuals_changed') }} as changed
            using (unified_individual_id)
    {%- endif %}
),

individuals as (
    select * from {{ ref('int_individuals_deduplicated') }}
),

prepared as (
    select * from {{ ref('int_person_records_prepared') }}
),

members as (
    select
        links.unified_individual_id,
        links.source_name,
        individuals.first_name,
        individuals.first_name_key,
        individuals.first_name_is_placeholder,
        prepared.first_name_canon,
        individuals.last_name,
        individuals.last_name_key,
        individuals.birth_date,
        individuals.gender,
        individuals.updated_ts,
        {{ source_priority_rank('links.source_name') }} as priority
    from links
    inner join individuals
        on
            links.source_name = individuals.source_name
            and links.source_record_id = individuals.source_record_id
    left join prepared
        on
            links.source_name = prepared.source_name
            and links.source_record_id = prepared.source_record_id
    where links.record_kind = 'person'
),

{% for field, spec in fields.items() %}
    {{ field }}_candidates as (
        select
            unified_individual_id,
            {{ spec.key }} as value_key,
            {%- if spec.is_name %}
            -- the spelling to show: one typed in mixed case, else the most recent
                {{ cdp_first(field, [
                    ('(' ~ field ~ ' <> upper(' ~ field ~ ') and ' ~ field ~ ' <> lower(' ~ field ~ '))', 'desc', 'boolean'),
                    ('updated_ts', 'desc', 'timestamp'),
                    (field, 'asc', 'text')
                ]) }} as display_value,
            {%- else %}
                {{ field }} as display_value,
            {%- endif %}
            {{ 'min(first_name_canon)' if field == 'first_name' else 'cast(null as ' ~ cdp_type('varchar') ~ ')' }} as canon,
            count(*) as n,
            max(updated_ts) as latest_ts,
            min(priority) as priority
        from members
        where
            {{ spec.key }} is not null
            {%- if field == 'first_name' %}
                and not coalesce(first_name_is_placeholder, false)
            {%- endif %}
        group by unified_individual_id, {{ spec.key }}
    ),

    -- a nickname whose formal name the person's records also hold (Bob beside Robert)
    {{ field }}_checked as (
        select
            candidates.*,
            formal.value_key is not null as formal_name_known
        from {{ field }}_candidates as candidates
        left join {{ field }}_candidates as formal
            on
                candidates.unified_individual_id = formal.unified_individual_id
                and candidates.canon = cast(formal.value_key as {{ cdp_type('varchar') }})
                and candidates.canon <> cast(candidates.value_key as {{ cdp_type('varchar') }})
    ),

    best_{{ field }} as (
        select
            unified_individual_id,
            {% if spec.is_name -%}
                {{ proper_case('display_value') }}
            {%- else -%}
                display_value
            {%- endif %} as {{ field }}
        from {{ field }}_checked
        qualify row_number() over (
            partition by unified_individual_id
            order by formal_name_known asc, {{ reconcile_order_by(field, 'value_key') }}
        ) = 1
    ),
{% endfor %}

counts as (
    select
        unified_individual_id,
        count(*) as record_count,
        count(distinct source_name) as source_count,
        {{ list_distinct_sorted('source_name') }} as sources
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
        best_gender.gender,
        clusters.created_run_id,
        clusters.updated_run_id,
        coalesce(counts.record_count, 0) as record_count,
        coalesce(counts.source_count, 0) as source_count
    from clusters
    left join counts using (unified_individual_id)
    left join best_first_name using (unified_individual_id)
    left join best_last_name using (unified_individual_id)
    left join best_birth_date using (unified_individual_id)
    left join best_gender using (unified_individual_id)
),

{{ with_unchanged_people('unified_individual', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id
