{#- Marts that rebuild only the people a run changed (docs/insights.md, Increments).

    On DuckDB, when the run is an increment, the pipeline sets CDP_MARTS_INCREMENT to
    {"new_loads": {source: [load id, ...]}}: the loads the marts have not seen yet
    (cdp/harmonise/marts_increment.py decides, and leaves it empty for a full build). -#}

{#- The increment, or none for a full build. -#}
{% macro marts_increment() -%}
    {%- set raw = env_var('CDP_MARTS_INCREMENT', '') -%}
    {%- if raw and target.type == 'duckdb' -%}
        {{ return(fromjson(raw)) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The new loads as rows (source_name, load_id). -#}
{% macro new_loads_relation(increment) -%}
    {%- set rows = [] -%}
    {%- for source, loads in increment['new_loads'].items() | sort -%}
        {%- for load in loads -%}
            {%- do rows.append("('" ~ source | replace("'", "''") ~ "', '" ~ load | replace("'", "''") ~ "')") -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if rows -%}
        (select * from (values {{ rows | join(', ') }}) as new_loads (source_name, load_id))
    {%- else -%}
        (select cast(null as varchar) as source_name, cast(null as varchar) as load_id where false)
    {%- endif -%}
{%- endmacro %}

{#- The Parquet file a model wrote last run (its config location). -#}
{% macro previous_output(name) -%}
    read_parquet('{{ env_var('CDP_WORKSPACE') }}/lake/marts/{{ name }}.parquet')
{%- endmacro %}

{#- The CTE `result` of a per-person mart: its `final` rows and, on an increment, last
    run's rows of everyone who is still a unified individual and was not computed again
    (int_unified_individuals_changed). -#}
{% macro with_unchanged_people(name, increment) -%}
    {%- if increment %}
    kept as (
        select previous.*
        from {{ previous_output(name) }} as previous
        semi join {{ source('identity', 'identity_clusters') }} as now using (unified_individual_id)
        anti join {{ ref('int_unified_individuals_changed') }} as changed
            using (unified_individual_id)
    ),

    result as (
        select * from final
        union all by name
        select * from kept
    )
    {%- else %}
    result as (
        select * from final
    )
    {%- endif %}
{%- endmacro %}
