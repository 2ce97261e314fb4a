{#-
  `external` on DuckDB: the model's rows go straight to its Parquet file.

  dbt-duckdb's own `external` first stores the result as a table in dbt's database file,
  then copies that table out. At a million rows the stored table was most of a model's
  time (one harmonised table, measured alone: 5.2 s that way, 3.2 s through a temporary
  table, 2.1 s straight to the file; the next best products 14.4 s through a temporary
  table, 9.9 s straight). This one keeps what the rest of the project relies on:
  - the same location (`location`, else `<external root>/<name>.parquet`);
  - a view of the model's name over the file, in dbt's database;
  - one all-null row in the file when the result is empty, which the view leaves out
    (readers of the file hide it too: cdp/catalog.py).
  An increment reads the model's previous file while writing it: DuckDB writes over an
  existing file through a temporary one, renamed when complete. The file's columns are
  all nullable whatever the query proves about them (profiles.yml turns off DuckDB's
  statistics propagation, which marked a column REQUIRED when the plan knew it had no
  nulls), so an increment's file (kept rows read back) and a full build's have the same
  bytes. Spark has its own (spark_external.sql).
-#}
{% materialization external, adapter='duckdb', supported_languages=['sql'] %}
    {%- set location = render(config.get('location', default=external_location(this, config))) -%}
    {%- set quoted = "'" ~ (location | replace("'", "''")) ~ "'" -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set scratch = adapter.quote('cdp_external__' ~ this.identifier) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('main', fetch_result=True) -%}
        copy (
            {{ compiled_code }}
        ) to {{ quoted }} (format parquet);
        select coalesce(sum(num_rows), 0) from parquet_file_metadata({{ quoted }})
    {%- endcall %}
    {%- set written = load_result('main')['data'][0][0] -%}
    {%- if written == 0 %}
        {#- an empty result: one row of nulls, as dbt-duckdb writes -#}
        {% call statement('empty') -%}
            create or replace temporary table {{ scratch }} as
                select * from read_parquet({{ quoted }}) limit 0;
            insert into {{ scratch }} default values;
            copy {{ scratch }} to {{ quoted }} (format parquet);
            drop table {{ scratch }}
        {%- endcall %}
    {%- endif %}

    {%- if existing is not none and existing.type != 'view' %}
        {{ drop_relation_if_exists(existing) }}
    {%- endif %}
    {% call statement('view') -%}
        create or replace view {{ target_relation }} as (
            select * from read_parquet({{ quoted }})
            {%- if written == 0 %}
            where false  -- the all-null row stands for no rows
            {%- endif %}
        )
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
