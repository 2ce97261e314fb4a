{#-
  `view` on DuckDB: one `create or replace view`.

  dbt's own view materialization makes the view under a temporary name, renames the old
  one aside, renames the new one in and drops the old: four statements, each a change of
  dbt's database file. A harmonise build makes about 30 views (the staging and union
  views, whose filter changes with every increment) before its first deduplicated table
  can start, so those statements sat on the critical path of every build. DuckDB
  replaces a view in one statement, in one transaction, and a reader never sees it
  missing. Spark keeps dbt-spark's.
-#}
{% materialization view, adapter='duckdb' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing = load_cached_relation(this) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {{ return(cdp_finish_with_view(target_relation, existing, sql, post_hooks, 'main')) }}
{% endmaterialization %}
