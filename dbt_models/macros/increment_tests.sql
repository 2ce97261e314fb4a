{#- What a data test reads on an increment (docs/sources.md, "What an increment tests").

    dbt hands every generic test its model through get_where_subquery. On an increment,
    a table whose rows this build did not write is made of copies of rows that passed
    their tests when they were written:
    - a table kept in parts (cdp/io/parts.py: a harmonised table, or an attributed mart on
      a marts increment): the build wrote its newest part; the earlier parts only lost
      rows;
    - unified_individual and unified_contact_point: the build wrote the rows of the people
      int_unified_individuals_changed lists and copied everyone else's.
    So a rule that judges each row alone (not_null, accepted_values, an expression: the
    row rules of `invariants`, tests/generic/invariants.sql, or dbt's tests of the same
    names) reads the rows written, and a uniqueness rule reads every row sharing a key
    with one of them (two copies cannot collide: they were unique together before and
    only lost rows since; a key with a null in it is read wherever it is, as the rule
    groups nulls).
    A harmonised table's person records (belongs_to_individual) are checked for the rows
    written and for every row pointing at a person record that may have gone: one the
    build staged again (.cdp/touched, which int_individuals_deduplicated leaves), or one
    of a source it took whole; a person record leaves the table no other way. Any other
    test (a singular test) reads the whole table. A full build tests every row.

    On a 1M increment a uniqueness test over a deduplicated table grouped all its keys
    (0.3 to 0.5 s of dbt node time each); scoped, its query takes 0.01 s and the node
    0.16 to 0.27 s, the rest dbt's own. -#}
{% macro duckdb__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set scoped = tested_rows(relation) -%}
    {%- if scoped is none and not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ scoped if scoped is not none else relation }} as cdp_tested
        {%- if where %} where {{ where }}{% endif %}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}

{#- The rows this test reads on an increment (a parenthesised query), or none for every
    row. (`invariants` scopes each of its rules itself.) -#}
{% macro tested_rows(relation) -%}
    {%- set test = model.get('test_metadata') if model is mapping else none -%}
    {%- if not execute or not test or target.type != 'duckdb' or test.name == 'invariants' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set written = rows_written(relation) -%}
    {%- if written is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set kwargs = test.get('kwargs', {}) -%}
    {%- if test.name == 'belongs_to_individual' -%}
        {{ return(rows_naming_gone_records(relation, written, kwargs)) }}
    {%- endif -%}
    {%- if test.name in ('not_null', 'accepted_values') -%}
        {{ return(rows_judged(written)) }}
    {%- endif -%}
    {%- if test.name == 'unique' -%}
        {{ return(rows_keyed(relation, written, [kwargs.column_name])) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The rows a rule judging each row alone reads on an increment: those written (a
    parenthesised query). -#}
{% macro rows_judged(written) -%}
    {{ return('(select * from ' ~ written.rows ~ ')') }}
{%- endmacro %}

{#- The rows a uniqueness rule over `keys` reads on an increment: every row sharing a key
    with a row written, and every row with a null in its key (a parenthesised query); none
    (the whole table) when a key is an expression rather than a column. -#}
{% macro rows_keyed(relation, written, keys) -%}
    {%- for key in keys if not modules.re.match('^[a-z_][a-z0-9_]*$', key) -%}
        {{ return(none) }}
    {%- endfor -%}
    {%- set listed = keys | join(', ') -%}
    {%- set has_null = [] -%}
    {%- for key in keys %}{% do has_null.append(key ~ ' is null') %}{% endfor -%}
    {%- set keyed -%}
        {%- if written.by in keys %}
        {#- the rows written are every row of their people: no other row shares a key
            (a row with a null in its key is read once, below) -#}
        (select * from {{ written.rows }} as cdp_written where not ({{ has_null | join(' or ') }})
        {%- else %}
        (select * from {{ relation }} semi join (select {{ listed }} from {{ written.rows }}) as cdp_written using ({{ listed }})
        {%- endif %}
        union all
        select * from {{ relation }} where {{ has_null | join(' or ') }})
    {%- endset -%}
    {{ return(keyed) }}
{%- endmacro %}

{#- The rows of `relation` this increment wrote, as {'rows': something to select from,
    'by': the column whose values the build wrote all rows of, or none}; none when the build
    wrote the table whole (a full build, or a table not kept from one build to the next). -#}
{% macro rows_written(relation) -%}
    {%- set name = relation.identifier -%}
    {%- set harmonising = harmonise_increment() -%}
    {%- if harmonising or marts_increment() -%}
        {#- a harmonised table, or an attributed mart, kept in parts: the newest part -#}
        {%- set parts = previous_parts(previous_path(name, 'harmonised' if harmonising else 'marts')) -%}
        {%- if parts -%}
            {{ return({'rows': 'read_parquet(' ~ sql_string(parts[-1]) ~ ')', 'by': none}) }}
        {%- endif -%}
    {%- endif -%}
    {%- if marts_increment() and name in ('unified_individual', 'unified_contact_point') -%}
        {{ return({
            'rows': '(select * from ' ~ relation ~ ' semi join read_parquet('
                ~ sql_string(previous_path('int_unified_individuals_changed'))
                ~ ') as cdp_changed using (unified_individual_id))',
            'by': 'unified_individual_id',
        }) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- belongs_to_individual on a harmonise increment: the rows written, and every row whose
    person record the build staged again or took whole, the only records that can have
    left int_individuals_deduplicated since the copied rows passed. None (every row) when
    that table was not kept in parts or left no list of its records. -#}
{% macro rows_naming_gone_records(relation, written, kwargs) -%}
    {%- set increment = harmonise_increment() -%}
    {%- set individuals = 'int_individuals_deduplicated' -%}
    {%- set touched = touched_file(individuals) if increment else none -%}
    {%- if written.by is not none or touched is none
        or not previous_parts(previous_path(individuals, 'harmonised')) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set source_column = kwargs.get('source_column', 'source_name') -%}
    {%- set record_column = kwargs.get('record_column', 'source_record_id') -%}
    {%- set whole = sql_strings(increment.get('whole_sources', [])) -%}
    {%- set rows -%}
        (select * from {{ written.rows }}
        union all
        select cdp_copied.* from {{ relation }} as cdp_copied
        semi join read_parquet({{ sql_string(touched) }}) as cdp_touched
            on cdp_copied.{{ source_column }} = cdp_touched.source_name
            and cdp_copied.{{ record_column }} = cdp_touched.source_record_id
        {%- if whole %}
        union all
        select * from {{ relation }} where {{ source_column }} in ({{ whole }})
        {%- endif %})
    {%- endset -%}
    {{ return(rows) }}
{%- endmacro %}
