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

  A table made a folder of parts for an increment (cdp/io/parts.py: a deduplicated table
  before a harmonise increment, an attributed table before a marts increment) is not
  written again: the model's rows (the records a new load touched; the attributed rows
  that changed) become a new part, and an earlier part is written again, without them,
  only when it holds an older row of one of those records or a row of a source taken
  whole.
-#}
{% materialization external, adapter='duckdb', supported_languages=['sql'] %}
    {%- set location = render(config.get('location', default=external_location(this, config))) -%}
    {%- set quoted = "'" ~ (location | replace("'", "''")) ~ "'" -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- set scratch = adapter.quote('cdp_external__' ~ this.identifier) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set parts = [] %}
    {%- if config.get('parts_touched') %}
        {#- the model chose between parts and kept rows with the same path -#}
        {%- set homes = [previous_path(this.identifier, 'harmonised'), previous_path(this.identifier)] %}
        {%- if location not in homes %}
            {{ exceptions.raise_compiler_error(
                this.identifier ~ ': a table kept in parts lives at '
                ~ homes | join(' or ') ~ ', not ' ~ location) }}
        {%- endif %}
        {%- set parts = previous_parts(location) %}
    {%- endif %}
    {%- if parts %}
    {%- set written = cdp_write_part(location, parts) %}
    {%- set quoted = sql_string(location ~ '/part-*.parquet') %}
    {%- else %}
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
    {%- endif %}

    {%- set over_file -%}
        select * from read_parquet({{ quoted }})
        {%- if written == 0 and not parts %}
        where false  -- the all-null row stands for no rows
        {%- endif %}
    {%- endset %}
    {{ return(cdp_finish_with_view(target_relation, existing, over_file, post_hooks, 'view')) }}
{% endmaterialization %}

{#- The end of both materializations on DuckDB (this one's and `view`'s): the model's view
    made or replaced (a table of its name dropped first), the post-hooks around dbt's
    commit, and the relation made. `statement_name`: 'main' when making the view is the
    model's main statement. -#}
{% macro cdp_finish_with_view(relation, existing, select_sql, post_hooks, statement_name) -%}
    {%- if existing is not none and existing.type != 'view' %}
        {{ drop_relation_if_exists(existing) }}
    {%- endif %}
    {% call statement(statement_name) -%}
        create or replace view {{ relation }} as (
            {{ select_sql }}
        )
    {%- endcall %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [relation]}) }}
{%- endmacro %}

{#- An increment's rows as a new part of the folder `location`, whose part files are
    `parts`. The older rows of the records computed again and the rows of sources the
    layer's increment takes whole go from the earlier parts. The records computed again
    are, by the model's `parts_touched`: 'marked', those of every row the model returns,
    of which the rows marked `cdp_touched_only` are not written (a deduplicated table:
    with_unchanged_records, whose records are also left in touched_path for
    int_person_records_prepared); 'this', those of the new part (identity's input:
    with_unchanged_person_records; an attributed table: attributed_rows). Returns the new
    part's row count. -#}
{% macro cdp_write_part(location, parts) -%}
    {%- set numbers = [] %}
    {%- for part in parts %}
        {%- do numbers.append(part.split('/part-')[-1].split('.')[0] | int) %}
    {%- endfor %}
    {%- set new_part = location ~ '/part-' ~ ('%05d' | format(numbers | max + 1)) ~ '.parquet' %}
    {%- set new_file = sql_string(new_part) %}
    {%- set layer = harmonise_increment() if location == previous_path(this.identifier, 'harmonised') else marts_increment() %}
    {%- set whole = sql_strings((layer or {}).get('whole_sources', [])) %}
    {%- set gone = 'earlier.source_name in (' ~ whole ~ ')' if whole else 'false' %}
    {%- set touched = adapter.quote('cdp_touched__' ~ this.identifier) %}
    {%- set rows = adapter.quote('cdp_rows__' ~ this.identifier) %}
    {% call statement('main', fetch_result=True) -%}
        {%- if config.get('parts_touched') == 'marked' %}
        create or replace temporary table {{ rows }} as (
            {{ compiled_code }}
        );
        copy (
            select * exclude (cdp_touched_only) from {{ rows }} where cdp_touched_only is null
        ) to {{ new_file }} (format parquet);
        create or replace temporary table {{ touched }} as
            select distinct source_name, source_record_id from {{ rows }};
        drop table {{ rows }};
        {%- if harmonise_increment() %}
        copy {{ touched }} to {{ sql_string(touched_path(this.identifier)) }} (format parquet);
        {%- endif %}
        {%- else %}
        copy (
            {{ compiled_code }}
        ) to {{ new_file }} (format parquet);
        create or replace temporary table {{ touched }} as
            select distinct source_name, source_record_id
            from read_parquet({{ new_file }});
        {%- endif %}
        select coalesce(sum(num_rows), 0) from parquet_file_metadata({{ new_file }})
    {%- endcall %}
    {%- set written = load_result('main')['data'][0][0] %}
    {% call statement('superseded', fetch_result=True) -%}
        -- (a column of the file's own may be called filename)
        select distinct earlier.cdp_part_file
        from read_parquet([{{ sql_strings(parts) }}], filename = 'cdp_part_file') as earlier
        left join {{ touched }} as touched using (source_name, source_record_id)
        where touched.source_name is not null or {{ gone }}
        order by 1
    {%- endcall %}
    {%- for row in load_result('superseded')['data'] %}
        {% call statement('rewrite') -%}
            copy (
                select earlier.*
                from read_parquet({{ sql_string(row[0]) }}) as earlier
                anti join {{ touched }} using (source_name, source_record_id)
                where not ({{ gone }})
            ) to {{ sql_string(row[0]) }} (format parquet)
        {%- endcall %}
    {%- endfor %}
    {% call statement('touched_dropped') -%}
        drop table {{ touched }}
    {%- endcall %}
    {{ return(written) }}
{%- endmacro %}
