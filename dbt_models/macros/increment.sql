{#- Layers that rebuild only what new loads touched (cdp/harmonise/increments.py;
    docs/sources.md for the harmonised tables, docs/insights.md for the marts).

    On DuckDB, when a layer's build is an increment, the pipeline sets the layer's
    variable (CDP_HARMONISE_INCREMENT, CDP_MARTS_INCREMENT) to
    {"new_loads": {source: [load id, ...]}, "whole_sources": [source, ...]}: the loads the
    layer has not seen yet, and the snapshot sources among them taken whole. It is empty
    for a full build. -#}

{#- The layer's increment, or none for a full build.

    Read when a model runs, never while dbt parses it (`execute` is false then): dbt
    parses again every file that read an environment variable whose value changed, and
    the increment changes every build (about 0.5 s of each build at 1M, and the DAG of an
    increment gained edges a full build lacked). A model whose increment reads a relation
    its full build does not names it at parse time instead (`-- depends_on:` or
    parse_time_refs), so both builds have the same DAG. -#}
{% macro layer_increment(variable) -%}
    {%- if execute and target.type == 'duckdb' -%}
        {%- set raw = env_var(variable, '') -%}
        {%- if raw -%}
            {{ return(fromjson(raw)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- At parse time only: the relations `names` as dependencies of the calling model. -#}
{% macro parse_time_refs(names) -%}
    {%- if not execute -%}
        {%- for name in names %}{% do ref(name) %}{% endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro harmonise_increment() -%}
    {{ return(layer_increment('CDP_HARMONISE_INCREMENT')) }}
{%- endmacro %}

{% macro marts_increment() -%}
    {{ return(layer_increment('CDP_MARTS_INCREMENT')) }}
{%- endmacro %}

{#- In a generated staging model, after `from <raw rows>`: on a harmonise increment, only
    the rows of records that have a row in a new load of the source, every version of
    them (the caller block is the record key expression). Nothing of a source without a
    new load; everything of a source taken whole. -#}
{% macro touched_records(source_name) -%}
    {%- set increment = harmonise_increment() -%}
    {%- if increment and source_name not in increment.get('whole_sources', []) -%}
        {%- set loads = increment['new_loads'].get(source_name, []) -%}
        {%- if loads %}
    where {{ caller() }} in (
        select {{ caller() }}
        from {{ source('lake_raw', source_name) }}
        where _load_id in ({% for load in loads %}'{{ load | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor %})
    )
        {%- else %}
    where false
        {%- endif -%}
    {%- endif -%}
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

{#- The Parquet file a model wrote last run (its config location): a mart, or a
    harmonised table when folder is 'harmonised'. -#}
{% macro previous_output(name, folder='marts') -%}
    {%- set parts = previous_parts(previous_path(name, folder)) if folder == 'harmonised' else [] -%}
    {%- if parts -%}
    read_parquet([{{ sql_strings(parts) }}])
    {%- else -%}
    read_parquet('{{ previous_path(name, folder) }}')
    {%- endif -%}
{%- endmacro %}

{#- A value as an SQL string literal. -#}
{% macro sql_string(value) -%}
    {{ return("'" ~ (value | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{#- Values as SQL string literals, comma-separated (for `in (...)` or a list). -#}
{% macro sql_strings(values) -%}
    {%- set quoted = [] -%}
    {%- for value in values %}{% do quoted.append(sql_string(value)) %}{% endfor -%}
    {{ return(quoted | join(', ')) }}
{%- endmacro %}

{% macro previous_path(name, folder='marts') -%}
    {{ return(env_var('CDP_DBT_WORKSPACE') ~ '/lake/' ~ folder ~ '/' ~ name ~ '.parquet') }}
{%- endmacro %}

{#- The CTE `result` of a deduplicated table: its `final` rows and, on a harmonise
    increment, last run's rows of every record not staged again. The model's `unioned`
    then holds every version of the records a new load touched (touched_records), so
    those are the records computed again; a source taken whole loses all its old rows
    (records missing from its new extract must go). The all-null row written for an
    empty model (engine/duckdb_external.sql) is not kept.

    When the table is a folder of parts (cdp/io/parts.py), `result` is `final` and, for
    every record staged again, one row of its key alone marked `cdp_touched_only`: the
    materialization writes the other rows as a new part and takes the older rows of
    every marked or written record out of the earlier parts. Those records come from
    the one reading of the raw rows `unioned` makes (DuckDB keeps a CTE used twice);
    finding them with a query of their own read the source's raw keys again, 0.25 s of
    each deduplicated table's 0.6 s in a 1M increment. -#}
{% macro with_unchanged_records(name, increment) -%}
    {{- config(parts_touched='marked') -}}
    {%- set parted = increment and previous_parts(previous_path(name, 'harmonised')) %}
    {%- if parted %}
    result as (
        select * from final
        union all by name
        select distinct
            source_name,
            source_record_id,
            true as cdp_touched_only
        from unioned
    )
    {%- elif increment %}
    touched as (
        select distinct source_name, source_record_id
        from unioned
    ),

    {{ kept_records(previous_output(name, 'harmonised'), 'touched', increment) }}
    {{ final_and_kept(increment) }}
    {%- else %}
    {{ final_and_kept(none) }}
    {%- endif %}
{%- endmacro %}

{#- On an increment, the part files of the table at `path` when it is a folder of parts
    (cdp/io/parts.py), in name order; an empty list otherwise. -#}
{% macro previous_parts(path) -%}
    {%- if not execute or not (harmonise_increment() or marts_increment()) -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set marked = run_query("select count(*) from glob(" ~ sql_string(path ~ '/_cdp_parts') ~ ")") -%}
    {%- if marked.rows[0][0] == 0 -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set found = run_query(
        "select file from glob(" ~ sql_string(path ~ '/part-*.parquet') ~ ") order by file"
    ) -%}
    {{ return(found.columns[0].values() | list) }}
{%- endmacro %}

{#- The CTE `kept`: last build's rows (`previous`) of every record not computed again
    (`recomputed`: source_name, source_record_id), none of a source taken whole and not
    the all-null row of an empty model. -#}
{% macro kept_records(previous, recomputed, increment) -%}
    kept as (
        select previous.*
        from {{ previous }} as previous
        anti join {{ recomputed }} using (source_name, source_record_id)
        where previous.source_name is not null
        {%- for source_name in increment.get('whole_sources', []) %}
            and previous.source_name <> '{{ source_name | replace("'", "''") }}'
        {%- endfor %}
    ),
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
    {%- endif %}
    {{ final_and_kept(increment) }}
{%- endmacro %}

{#- Where a deduplicated table kept in parts leaves, on a harmonise increment, the records
    it staged again (cdp_write_part; the folder is cdp.harmonise.increments.touched_dir). -#}
{% macro touched_path(name) -%}
    {{ return(env_var('CDP_DBT_WORKSPACE') ~ '/.cdp/touched/' ~ name ~ '.parquet') }}
{%- endmacro %}

{#- touched_path(name) when this build wrote it (the folder is emptied before each
    build), else none. -#}
{% macro touched_file(name) -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from glob(" ~ sql_string(touched_path(name)) ~ ")") -%}
        {%- if found.rows[0][0] > 0 -%}
            {{ return(touched_path(name)) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The CTE `result`: `final`, and on an increment also the CTE `kept` before it. -#}
{% macro final_and_kept(increment) -%}
    result as (
        select * from final
    {%- if increment %}
        union all by name
        select * from kept
    {%- endif %}
    )
{%- endmacro %}

{#- int_person_records_prepared on a harmonise increment. A record's row depends on its
    own rows in the five person tables and, through identity.max_identifier_records, on
    how many records hold each of its emails and phones. So it can differ from last
    build's only for a record staged again (a new load touched it: its rows in the
    `*_unioned` views) or one sharing an email or phone with such a record, as it is now
    or as it was last built (a count moved). Those are `affected`; the caller's CTEs
    `emails` and `phones` are the current tables. Nothing on a full build. -#}
{% macro affected_person_records(increment) -%}
    {%- set objects = [
        'individuals', 'contact_point_emails', 'contact_point_phones',
        'contact_point_addresses', 'party_identifications',
    ] %}
    {%- set unioned = [] %}
    {%- for name in objects %}{% do unioned.append('int_' ~ name ~ '_unioned') %}{% endfor %}
    {%- do parse_time_refs(unioned) %}
    {%- if increment %}
    -- read where used: kept whole, last build's 1.8 million rows with their lists cost
    -- more than reading the file twice
    previous as {{ cdp_inlined() }} (
        select *
        from {{ previous_output('int_person_records_prepared', 'harmonised') }}
        where unique_id is not null
    ),

    -- each object's records staged again: as its deduplicated table left them when it
    -- wrote a part (touched_path), else from its staging (which reads the raw keys again)
    touched as (
        {%- for name in objects %}
        {%- set handed = touched_file('int_' ~ name ~ '_deduplicated') %}
        select source_name, source_record_id
        from {{ 'read_parquet(' ~ sql_string(handed) ~ ')' if handed else ref(unioned[loop.index0]) }}
        {{- ' union' if not loop.last }}
        {%- endfor %}
    ),

    -- as last built: the touched records, and every record of a source taken whole
    -- (one missing from its new extract is gone, its emails and phones with it)
    touched_before as (
        select previous.*
        from previous
        semi join touched using (source_name, source_record_id)
        {%- for source_name in increment.get('whole_sources', []) %}
        union all
        select * from previous where source_name = '{{ source_name | replace("'", "''") }}'
        {%- endfor %}
    ),

    moved_emails as (
        select email_match_key
        from emails semi join touched using (source_name, source_record_id)
        where is_personal
        union
        select unnest(emails) from touched_before
    ),

    moved_phones as (
        select phone_e164
        from phones semi join touched using (source_name, source_record_id)
        where is_valid
        union
        select unnest(phones) from touched_before
    ),

    affected as (
        select source_name, source_record_id from touched
        union
        select source_name, source_record_id
        from emails semi join moved_emails using (email_match_key)
        where is_personal
        union
        select source_name, source_record_id
        from phones semi join moved_phones using (phone_e164)
        where is_valid
    ),
    {%- endif %}
{%- endmacro %}

{#- A condition to append to a WHERE clause of int_person_records_prepared: on an
    increment, only the rows of `table` holding a `column` value that an affected record
    holds (all of that value's rows: how many records hold it is counted from them). -#}
{% macro held_by_affected(increment, table, column) -%}
    {%- if increment %}
        and {{ column }} in (
            select {{ column }} from {{ table }}
            semi join affected using (source_name, source_record_id)
        )
    {%- endif %}
{%- endmacro %}

{#- A condition to append to a WHERE clause of int_person_records_prepared: on an
    increment, only the rows of `table` whose record is affected. -#}
{% macro only_affected(increment, table) -%}
    {%- if increment %}
        and exists (
            select 1 from affected
            where affected.source_name = {{ table }}.source_name
                and affected.source_record_id = {{ table }}.source_record_id
        )
    {%- endif %}
{%- endmacro %}

{#- The CTE `result` of a table kept in parts whose increment computes some records again
    (the CTE `recomputed`, keyed by source_name and source_record_id): the rows of
    `final` that differ from those records' rows in `earlier` (a relation of last build's
    rows), compared column by column (EXCEPT: nulls equal, no hash to collide), and every
    row of a source the increment takes whole. A recomputed record whose row came out the
    same is not written, and keeps its row where it is (parts_touched 'this'). -#}
{% macro rows_that_differ(earlier, recomputed, increment) -%}
    {%- set whole = sql_strings(increment.get('whole_sources', [])) %}
    result as (
        select * from final
        {%- if whole %}
        where source_name not in ({{ whole }})
        {%- endif %}
        except
        select earlier.*
        from {{ earlier }} as earlier
        semi join {{ recomputed }} using (source_name, source_record_id)
        {%- if whole %}
        union all
        select * from final where source_name in ({{ whole }})
        {%- endif %}
    )
{%- endmacro %}

{#- The CTE `result` of int_person_records_prepared: `final` and, on an increment, last
    build's rows of every record not affected (none of a source taken whole).

    When the table is a folder of parts (cdp/io/parts.py), `result` is only the rows of
    `final` that differ from last build's: those of new records and of records whose row
    changed, and every row of a source taken whole. The materialization writes them as a
    new part and takes these records' older rows out of the earlier parts
    (parts_touched 'this'); an affected record whose row came out the same keeps it. -#}
{% macro with_unchanged_person_records(increment) -%}
    {{- config(parts_touched='this') -}}
    {%- if increment and previous_parts(previous_path('int_person_records_prepared', 'harmonised')) %}
    {{ rows_that_differ('previous', 'affected', increment) }}
    {%- else %}
    {%- if increment %}
    {{ kept_records('previous', 'affected', increment) }}
    {%- endif %}
    {{ final_and_kept(increment) }}
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` (its `columns`, unqualified) that a new load of the increment
    wrote, and every row of a source it takes whole: the records a marts increment reads
    again. `union`: how the two are joined ('union' drops repeats). -#}
{% macro rows_loaded_again(relation, columns, increment, union='union all') -%}
    {%- set whole = sql_strings(increment.get('whole_sources', [])) %}
    select {{ columns }}
    from {{ relation }} as loaded
    semi join {{ new_loads_relation(increment) }} as new_loads
        on loaded.source_name = new_loads.source_name and loaded._load_id = new_loads.load_id
    {%- if whole %}
    {{ union }}
    select {{ columns }} from {{ relation }} where source_name in ({{ whole }})
    {%- endif %}
{%- endmacro %}

{#- The same records (those of the CTE `again`, by source_name and source_record_id) as
    the last marts build read them in its input `name` (seen_input), with every record of
    a source taken whole: `columns` of them (none for a record that is new). -#}
{% macro rows_as_last_seen(name, columns, again, increment) -%}
    {%- set whole = sql_strings(increment.get('whole_sources', [])) %}
    select {{ columns }}
    from {{ seen_input(name) }} as seen
    where
        seen.source_name is not null
        and (
            exists (
                select 1 from {{ again }}
                where {{ again }}.source_name = seen.source_name
                    and {{ again }}.source_record_id = seen.source_record_id
            )
            {%- if whole %}
            or seen.source_name in ({{ whole }})
            {%- endif %}
        )
{%- endmacro %}

{#- An input of the marts as their last build read it (cdp.harmonise.increments.keep_seen:
    Layer.seen; a file or a folder of parts), for an increment to compare with what it
    is now. -#}
{% macro seen_input(name) -%}
    {%- set path = env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/_seen/' ~ name ~ '.parquet' -%}
    {%- set parts = previous_parts(path) -%}
    {%- if parts -%}
    read_parquet([{{ sql_strings(parts) }}])
    {%- else -%}
    read_parquet({{ sql_string(path) }})
    {%- endif -%}
{%- endmacro %}

{#- Activity attributed to unified individuals (macro attribute_to_individual) on a marts
    increment: the CTE `cte` holds the rows of `relation` to attribute again, and
    `recomputed` their keys. A row's attribution depends only on the row, the link of its
    person record and of its cookie (`cookie_column`), and the contact keys of its email
    and phone. So the rows attributed again are those of a load the marts have not seen
    (every row of a source taken whole) and those whose record, cookie, email or phone
    is in int_links_changed or int_contact_keys_changed; the rest keep last build's row
    (attributed_rows). On a full build, `cte` is `relation` whole. -#}
{% macro activity_again(cte, relation, increment, cookie_column=none) -%}
    {%- if increment %}
    links_changed as (
        select * from {{ ref('int_links_changed') }}
        where record_kind is not null
    ),

    keys_changed as (
        select * from {{ ref('int_contact_keys_changed') }}
        where key_type is not null
    ),

    recomputed as (
        {{ rows_loaded_again(relation, 'source_name, source_record_id', increment, 'union') }}
        union
        select activity.source_name, activity.source_record_id
        from {{ relation }} as activity
        semi join links_changed as changed
            on
                changed.record_kind = 'person'
                and activity.individual_source_name = changed.source_name
                and activity.individual_source_record_id = changed.source_record_id
        {%- if cookie_column %}
        union
        select activity.source_name, activity.source_record_id
        from {{ relation }} as activity
        semi join links_changed as changed
            on
                changed.record_kind = 'anonymous_visitor'
                and activity.{{ cookie_column }} = changed.source_record_id
        {%- endif %}
        union
        select activity.source_name, activity.source_record_id
        from {{ relation }} as activity
        semi join keys_changed as changed
            on changed.key_type = 'email' and activity.individual_email_match_key = changed.key_value
        union
        select activity.source_name, activity.source_record_id
        from {{ relation }} as activity
        semi join keys_changed as changed
            on changed.key_type = 'phone' and activity.individual_phone_e164 = changed.key_value
    ),

    {{ cte }} as (
        select * from {{ relation }}
        semi join recomputed using (source_name, source_record_id)
    ),
    {%- else %}
    {{ cte }} as (
        select * from {{ relation }}
    ),
    {%- endif %}
{%- endmacro %}

{#- The CTE `result` of an attributed activity table (ATTRIBUTED in
    cdp/harmonise/increments.py), from its `final` rows: every row on a full build. On a
    marts increment `final` holds only the rows attributed again (activity_again), and
    with the table a folder of parts (cdp/io/parts.py), `result` is those of them that
    differ from the row an earlier part holds (compared column by column), and every row
    of a source taken whole. The materialization writes them as a new part and takes
    these rows' older versions, and a whole source's rows, out of the earlier parts
    (parts_touched 'this'), so an earlier part is written again only when a row in it
    changed. A day's new activity then costs its own rows: attributing fewer rows alone,
    or writing fewer alone, measured no gain (220a349 and 7ea599b, both reverted), as the
    other half still read or wrote the table whole. Without parts (an empty table last
    build), last build's rows of the activity not attributed again are kept, none of a
    whole source. -#}
{% macro attributed_rows(name, increment) -%}
    {{- config(parts_touched='this') -}}
    {%- set parts = previous_parts(previous_path(name)) if increment else [] %}
    {%- if parts %}
    {{ rows_that_differ('read_parquet([' ~ sql_strings(parts) ~ '])', 'recomputed', increment) }}
    {%- else %}
    {%- if increment %}
    {{ kept_records(previous_output(name), 'recomputed', increment) }}
    {%- endif %}
    {{ final_and_kept(increment) }}
    {%- endif %}
{%- endmacro %}

{#- The links an attributed activity table reads (unified_link_individual): on an
    increment, only those of the person records and cookies its rows to attribute again
    (the CTE `cte` of activity_again) name, so the joins of attribute_to_individual
    hash a few thousand links instead of every one (0.6 -> 0.3 s for 24,000 web events
    at 1M). -#}
{% macro links_for(cte, increment, cookie_column=none) -%}
    {%- if increment %}
    select links.* from {{ source('identity', 'unified_link_individual') }} as links
    semi join (
        select distinct individual_source_name, individual_source_record_id from {{ cte }}
    ) as named
        on
            links.record_kind = 'person'
            and links.source_name = named.individual_source_name
            and links.source_record_id = named.individual_source_record_id
    {%- if cookie_column %}
    union all
    select links.* from {{ source('identity', 'unified_link_individual') }} as links
    semi join (select distinct {{ cookie_column }} as cookie from {{ cte }}) as named
        on links.record_kind = 'anonymous_visitor' and links.source_record_id = named.cookie
    {%- endif %}
    {%- else %}
    select * from {{ source('identity', 'unified_link_individual') }}
    {%- endif %}
{%- endmacro %}

{#- The contact keys an attributed activity table reads (int_contact_keys_resolved): on
    an increment, only the emails and phones its rows to attribute again name. -#}
{% macro keys_for(cte, increment) -%}
    {%- if increment %}
    select keys.* from {{ ref('int_contact_keys_resolved') }} as keys
    semi join (select distinct individual_email_match_key as key_value from {{ cte }}) as named
        on keys.key_type = 'email' and keys.key_value = named.key_value
    union all
    select keys.* from {{ ref('int_contact_keys_resolved') }} as keys
    semi join (select distinct individual_phone_e164 as key_value from {{ cte }}) as named
        on keys.key_type = 'phone' and keys.key_value = named.key_value
    {%- else %}
    select * from {{ ref('int_contact_keys_resolved') }}
    {%- endif %}
{%- endmacro %}
