{#-
  `external` on Spark: the model's rows written as Parquet at the path dbt-duckdb writes
  (its `location`, else lake/harmonised/<name>.parquet), as a folder of parts. The folder
  is replaced through Spark's commit protocol: on a local disk, as on object storage,
  the old parts go before the new ones are committed (docs/scale-out.md).
-#}
{% materialization external, adapter='spark' -%}
    {%- set location = cdp_external_location(model) -%}
    {{ run_hooks(pre_hooks) }}
    {%- call statement('main') -%}
        insert overwrite directory '{{ location }}' using parquet
        select * from (
            {{ sql }}
        ) as model
    {%- endcall -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [this]}) }}
{%- endmaterialization %}

{#-
  `view` on Spark: a temporary view of dbt's session. The models call the CDP functions,
  Python UDFs that exist only in the session (cdp.spark.udfs), and Spark refuses a
  persistent view over a temporary function. Nothing outside the dbt run reads a view:
  what is kept is written to the lake by `external` models (ref() names the view
  unqualified, lake.sql).
-#}
{% materialization view, adapter='spark' -%}
    {{ run_hooks(pre_hooks) }}
    {%- call statement('main') -%}
        create or replace temporary view {{ model['alias'] }} as
        {{ sql }}
    {%- endcall -%}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [this]}) }}
{%- endmaterialization %}
