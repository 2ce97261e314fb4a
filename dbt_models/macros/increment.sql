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
