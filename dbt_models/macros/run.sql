{#- The pipeline run a build belongs to: its id (CDP_RUN_ID) and its start, UTC
    (CDP_RUN_STARTED), set by the marts step (dagster_project/assets/dbt.py).

    Read when a model runs, never while dbt parses it (`execute` is false then): both
    change every run, and dbt parses again, and saves its parse state again, each file
    that read an environment variable whose value changed (about 0.5 s of every build,
    harmonise included, at any size). A model's `location` holds the text
    `{{ cdp_run_id() }}` for the run id, which the materialisations render when the
    model runs (engine/). -#}
{% macro cdp_run_id() -%}
    {{ return(env_var('CDP_RUN_ID', 'manual') if execute else 'manual') }}
{%- endmacro %}

{% macro cdp_run_started() -%}
    {{ return(env_var('CDP_RUN_STARTED', '1970-01-01 00:00:00') if execute else '1970-01-01 00:00:00') }}
{%- endmacro %}
