{#- A model's rules in one data test: columns never null, columns holding only listed
    values, expressions true on every row, and keys naming one row each.

    One test per model rather than one per rule: each dbt test node costs about 0.07 s of
    dbt's own CPU, whatever its query, and with a test per rule the tests took half of a
    small build's time. Each row rule is counted in one pass over the rows; each key is
    grouped on its own. The test returns a row per broken rule (`rule`, and `failing`:
    rows, or for a key values held by several rows), and dbt counts the rows in breach.

    Arguments, each optional:
      not_null:        [column, ...]
      accepted_values: {column: [value, ...], ...}   (null passes, as in dbt's own test)
      expressions:     [SQL true on every row, ...]  (null passes)
      unique:          [column, or [column, ...], or {columns: [...], where: SQL}, ...]
                       (a null is a value: two rows with the same nulls collide)

    On an increment the row rules read the rows the build wrote, and each key the rows
    sharing a key with them (macros/increment_tests.sql). -#}
{% test invariants(model, not_null=[], accepted_values={}, expressions=[], unique=[]) %}
{{ config(fail_calc='coalesce(sum(failing), 0)') }}
{%- set written = rows_written(model) if execute and target.type == 'duckdb' else none -%}
{%- set row_rules = [] -%}
{%- for column in not_null -%}
    {%- do row_rules.append(('not_null(' ~ column ~ ')', column ~ ' is null')) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- do row_rules.append(('accepted_values(' ~ column ~ ')', column ~ ' not in (' ~ sql_strings(values) ~ ')')) -%}
{%- endfor -%}
{%- for expression in expressions -%}
    {%- do row_rules.append(('expression(' ~ expression ~ ')', 'not (' ~ expression ~ ')')) -%}
{%- endfor -%}
{%- set branches = [] -%}
{%- for label, broken in row_rules -%}
    {%- do branches.append('select ' ~ sql_string(label) ~ ' as rule, broken_' ~ loop.index ~ ' as failing from row_rules') -%}
{%- endfor -%}
{%- for entry in unique -%}
    {%- set key = entry if entry is mapping else {'columns': [entry] if entry is string else entry} -%}
    {%- set columns = key['columns'] | join(', ') -%}
    {%- set scoped = rows_keyed(model, written, key['columns']) if written is not none else none -%}
    {%- set branch -%}
        select {{ sql_string('unique(' ~ columns ~ ')' ~ (' where ' ~ key.where if key.where else '')) }} as rule, count(*) as failing
        from (
            select {{ columns }}
            from {{ scoped if scoped is not none else model }} as cdp_keyed
            {%- if key.where %}
            where {{ key.where }}
            {%- endif %}
            group by {{ columns }}
            having count(*) > 1
        ) as cdp_repeated
    {%- endset -%}
    {%- do branches.append(branch) -%}
{%- endfor -%}
{%- if not branches -%}
    {{ exceptions.raise_compiler_error('invariants names no rule: give it not_null, accepted_values, expressions or unique') }}
{%- endif %}
with
{%- if row_rules %}
row_rules as (
    select
    {%- for label, broken in row_rules %}
        count(*) filter (where {{ broken }}) as broken_{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ rows_judged(written) if written is not none else model }} as cdp_rows
),
{%- endif %}
rules as (
    {{ branches | join('\n    union all\n    ') }}
)
select rule, failing from rules where failing > 0
{% endtest %}
