{#-
  Where a model lives. On DuckDB (dbt-duckdb) an `external` model is a Parquet file with
  a view over it in the dbt database, and ref() names that view. On Spark the lake is the
  only store: an `external` model is written to the same path (materialization
  `external` for spark, below), and ref() and source() read it back by path, so two dbt
  runs (harmonisation, then the marts after identity resolution) share nothing but files
  and no metastore is needed. Spark writes a model as a folder of Parquet parts at the
  path DuckDB writes one file to; every reader accepts both (cdp.io.lake).
-#}

{% macro ref() -%}
    {%- set version = kwargs.get('version') or kwargs.get('v') -%}
    {%- if (varargs | length) == 1 -%}
        {%- set name = varargs[0] -%}
        {%- set relation = builtins.ref(name, version=version) -%}
    {%- else -%}
        {%- set name = varargs[1] -%}
        {%- set relation = builtins.ref(varargs[0], name, version=version) -%}
    {%- endif -%}
    {{ return(adapter.dispatch('lake_ref', 'cdp')(relation, name)) }}
{%- endmacro %}

{% macro default__lake_ref(relation, name) -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro spark__lake_ref(relation, name) -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.name == name and node.config.materialized == 'external' -%}
                {{ return(cdp_parquet_relation(cdp_external_location(node))) }}
            {%- elif node.resource_type == 'model' and node.name == name and node.config.materialized == 'view' -%}
                {#- a temporary view of this session (spark_external.sql): unqualified -#}
                {{ return(api.Relation.create(identifier=node.alias)) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{% macro source(source_name, table_name) -%}
    {%- set relation = builtins.source(source_name, table_name) -%}
    {{ return(adapter.dispatch('lake_source', 'cdp')(relation, source_name, table_name)) }}
{%- endmacro %}

{% macro default__lake_source(relation, source_name, table_name) -%}
    {{ return(relation) }}
{%- endmacro %}

{#- A source with an external_location (dbt-duckdb's: a path, or read_parquet('<glob>',
    ...)) is read from that path. -#}
{% macro spark__lake_source(relation, source_name, table_name) -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() -%}
            {%- if node.source_name == source_name and node.name == table_name -%}
                {%- set location = node.config.get('external_location') or node.get('external_location') -%}
                {%- if location -%}
                    {%- set m = modules.re.match("\s*read_parquet\(\s*'([^']+)'", location) -%}
                    {{ return(cdp_parquet_relation(m.group(1) if m else location)) }}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{#- Spark SQL reads a path (a file, a folder of parts or a glob) as parquet.`path`. -#}
{% macro cdp_parquet_relation(path) -%}
    {{ return(api.Relation.create(schema='parquet', identifier=path, quote_policy={'identifier': true})) }}
{%- endmacro %}

{#- The path of an external model: its `location`, else `<external root>/<name>.parquet`
    as dbt-duckdb does (the external root is lake/harmonised, profiles.yml). -#}
{% macro cdp_external_location(node) -%}
    {%- set location = node.config.get('location') -%}
    {%- if not location -%}
        {%- set location = env_var('CDP_DBT_WORKSPACE') ~ '/lake/harmonised/' ~ node.alias ~ '.parquet' -%}
    {%- endif -%}
    {#- (a location may name the run, read when the model runs: macros/run.sql) -#}
    {{ return(render(location)) }}
{%- endmacro %}

{#- Every file of a folder of Parquet files (a model's history: one file, or one folder
    of parts on Spark, per run), matched by column name. -#}
{% macro read_parquet_folder(folder) -%}
    {{ return(adapter.dispatch('read_parquet_folder', 'cdp')(folder)) }}
{%- endmacro %}

{% macro default__read_parquet_folder(folder) -%}
    read_parquet(
        '{{ folder }}/*.parquet',
        union_by_name = true
    )
{%- endmacro %}

{% macro spark__read_parquet_folder(folder) -%}
    {{ cdp_parquet_relation(folder ~ '/*.parquet') }}
{%- endmacro %}
