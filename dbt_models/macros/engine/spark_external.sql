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
