{#-
  Every function, type and clause of the project's SQL that DuckDB and Spark spell
  differently, as one public macro that only calls adapter.dispatch, with the DuckDB
  version as default__ and the Spark version as spark__ (the pattern of jaffle-shop's
  cents_to_dollars). A model or another macro calls these, never the DuckDB spelling.
-#}

{#- ---- types and literals ---- -#}

{#- A type named the DuckDB way (varchar, bigint[], ...) in this engine's spelling. -#}
{% macro cdp_type(name) -%}
    {{ return(adapter.dispatch('cdp_type', 'cdp')(name)) }}
{%- endmacro %}

{% macro default__cdp_type(name) -%}
    {{ return(name) }}
{%- endmacro %}

{% macro spark__cdp_type(name) -%}
    {%- set t = name | trim | lower -%}
    {%- if t.endswith('[]') -%}
        {{ return('array<' ~ spark__cdp_type(t[:-2]) ~ '>') }}
    {%- elif t in ('varchar', 'text') -%}
        {{ return('string') }}
    {%- else -%}
        {{ return(t) }}
    {%- endif -%}
{%- endmacro %}

{#- A regular expression (or any text) as a SQL string literal. Spark's parser reads
    backslash escapes in literals, DuckDB's does not. -#}
{% macro cdp_regex(pattern) -%}
    {{ return(adapter.dispatch('cdp_regex', 'cdp')(pattern)) }}
{%- endmacro %}

{% macro default__cdp_regex(pattern) -%}
    '{{ pattern | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__cdp_regex(pattern) -%}
    '{{ pattern | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{#- A named struct: fields is a list of (name, SQL expression). -#}
{% macro cdp_struct(fields) -%}
    {{ return(adapter.dispatch('cdp_struct', 'cdp')(fields)) }}
{%- endmacro %}

{% macro default__cdp_struct(fields) -%}
    { {%- for name, expr in fields %}'{{ name }}': {{ expr }}{% if not loop.last %}, {% endif %}{% endfor -%} }
{%- endmacro %}

{% macro spark__cdp_struct(fields) -%}
    named_struct({%- for name, expr in fields %}'{{ name }}', {{ expr }}{% if not loop.last %}, {% endif %}{% endfor -%})
{%- endmacro %}

{#- The type of such a struct: fields is a list of (name, DuckDB type). -#}
{% macro cdp_struct_type(fields) -%}
    {{ return(adapter.dispatch('cdp_struct_type', 'cdp')(fields)) }}
{%- endmacro %}

{% macro default__cdp_struct_type(fields) -%}
    struct({%- for name, t in fields %}{{ name }} {{ t }}{% if not loop.last %}, {% endif %}{% endfor -%})
{%- endmacro %}

{% macro spark__cdp_struct_type(fields) -%}
    struct<{%- for name, t in fields %}{{ name }}:{{ cdp_type(t) }}{% if not loop.last %},{% endif %}{% endfor -%}>
{%- endmacro %}

{#- `select * exclude (a, b)`: every column but these. -#}
{% macro star_except(columns, relation=none) -%}
    {{ return(adapter.dispatch('star_except', 'cdp')(columns, relation)) }}
{%- endmacro %}

{% macro default__star_except(columns, relation) -%}
    {% if relation %}{{ relation }}.{% endif %}* exclude ({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__star_except(columns, relation) -%}
    {% if relation %}{{ relation }}.{% endif %}* except ({{ columns | join(', ') }})
{%- endmacro %}

{#- Relations with the same columns, stacked, matched by column name. -#}
{% macro union_all_by_name(relations) -%}
    {{ return(adapter.dispatch('union_all_by_name', 'cdp')(relations)) }}
{%- endmacro %}

{% macro default__union_all_by_name(relations) -%}
    {%- for r in relations %}
    select * from {{ r }}
    {%- if not loop.last %}
    union all by name
    {%- endif -%}
    {%- endfor %}
{%- endmacro %}

{#- Spark SQL has no UNION BY NAME. The generated relations unioned here are built from
    one column list per object (cdp.harmonise.dbt_codegen), so their columns come in the
    same order and a positional union matches them by name (a test checks it). -#}
{% macro spark__union_all_by_name(relations) -%}
    {%- for r in relations %}
    select * from {{ r }}
    {%- if not loop.last %}
    union all
    {%- endif -%}
    {%- endfor %}
{%- endmacro %}

{#- ---- text ---- -#}

{% macro nfc_normalize(expr) -%}
    {{ return(adapter.dispatch('nfc_normalize', 'cdp')(expr)) }}
{%- endmacro %}

{% macro default__nfc_normalize(expr) -%}
    nfc_normalize({{ expr }})
{%- endmacro %}

{% macro spark__nfc_normalize(expr) -%}
    cdp_nfc({{ expr }})
{%- endmacro %}

{% macro strip_accents(expr) -%}
    {{ return(adapter.dispatch('strip_accents', 'cdp')(expr)) }}
{%- endmacro %}

{% macro default__strip_accents(expr) -%}
    strip_accents({{ expr }})
{%- endmacro %}

{% macro spark__strip_accents(expr) -%}
    cdp_strip_accents({{ expr }})
{%- endmacro %}

{#- True when the whole of `expr` matches `pattern` (SQL: cdp_regex('...') or a column). -#}
{% macro regexp_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match', 'cdp')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, {{ pattern }})
{%- endmacro %}

{% macro spark__regexp_full_match(expr, pattern) -%}
    ({{ expr }} rlike concat('^(?:', {{ pattern }}, ')$'))
{%- endmacro %}

{#- DuckDB's regexp_replace: flags 'g' (every match; else the first) and 'i' (ignore
    case). Spark replaces every match: the patterns used without 'g' are anchored. -#}
{% macro cdp_regexp_replace(expr, pattern, replacement, flags='') -%}
    {{ return(adapter.dispatch('cdp_regexp_replace', 'cdp')(expr, pattern, replacement, flags)) }}
{%- endmacro %}

{% macro default__cdp_regexp_replace(expr, pattern, replacement, flags) -%}
    regexp_replace({{ expr }}, {{ cdp_regex(pattern) }}, {{ cdp_regex(replacement) }}{% if flags %}, '{{ flags }}'{% endif %})
{%- endmacro %}

{% macro spark__cdp_regexp_replace(expr, pattern, replacement, flags) -%}
    regexp_replace({{ expr }}, {{ cdp_regex(('(?i)' if 'i' in flags else '') ~ pattern) }}, {{ cdp_regex(replacement) }})
{%- endmacro %}

{#- The `group`th group of the first match, '' without one (both engines). -#}
{% macro cdp_regexp_extract(expr, pattern, group=1, flags='') -%}
    {{ return(adapter.dispatch('cdp_regexp_extract', 'cdp')(expr, pattern, group, flags)) }}
{%- endmacro %}

{% macro default__cdp_regexp_extract(expr, pattern, group, flags) -%}
    regexp_extract({{ expr }}, {{ cdp_regex(pattern) }}, {{ group }}{% if flags %}, '{{ flags }}'{% endif %})
{%- endmacro %}

{% macro spark__cdp_regexp_extract(expr, pattern, group, flags) -%}
    regexp_extract({{ expr }}, {{ cdp_regex(('(?i)' if 'i' in flags else '') ~ pattern) }}, {{ group }})
{%- endmacro %}

{#- A text parsed with the first strptime format that fits it (%Y-%m-%d, %d/%m/%Y %H:%M,
    ...), else null. -#}
{% macro try_strptime(expr, format) -%}
    {{ return(adapter.dispatch('try_strptime', 'cdp')(expr, format)) }}
{%- endmacro %}

{% macro default__try_strptime(expr, format) -%}
    try_strptime({{ expr }}, '{{ format | replace("'", "''") }}')
{%- endmacro %}

{% macro spark__try_strptime(expr, format) -%}
    try_to_timestamp({{ expr }}, {{ cdp_regex(strptime_to_java(format)) }})
{%- endmacro %}

{#- A strptime format as a Java DateTimeFormatter pattern (text quoted). -#}
{% macro strptime_to_java(format) -%}
    {%- set codes = {
        'Y': 'yyyy', 'y': 'yy', 'm': 'M', 'd': 'd', 'H': 'H', 'I': 'h', 'M': 'm', 'S': 's',
        'f': 'SSSSSS', 'p': 'a', 'b': 'MMM', 'B': 'MMMM', 'a': 'EEE', 'A': 'EEEE',
        'j': 'D', 'z': 'Z', '%': "'%'"
    } -%}
    {%- set ns = namespace(out='', literal='', i=0) -%}
    {%- for _ in range(format | length) -%}
        {%- if ns.i < format | length -%}
            {%- set c = format[ns.i] -%}
            {%- if c == '%' and ns.i + 1 < format | length and format[ns.i + 1] in codes -%}
                {%- if ns.literal -%}{%- set ns.out = ns.out ~ "'" ~ ns.literal ~ "'" -%}{%- set ns.literal = '' -%}{%- endif -%}
                {%- set ns.out = ns.out ~ codes[format[ns.i + 1]] -%}
                {%- set ns.i = ns.i + 2 -%}
            {%- else -%}
                {%- set ns.literal = ns.literal ~ c -%}
                {%- set ns.i = ns.i + 1 -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.literal -%}{%- set ns.out = ns.out ~ "'" ~ ns.literal ~ "'" -%}{%- endif -%}
    {{ return(ns.out) }}
{%- endmacro %}

{#- sha-256 of a text, as lowercase hex. -#}
{% macro cdp_sha256(expr) -%}
    {{ return(adapter.dispatch('cdp_sha256', 'cdp')(expr)) }}
{%- endmacro %}

{% macro default__cdp_sha256(expr) -%}
    sha256({{ expr }})
{%- endmacro %}

{% macro spark__cdp_sha256(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}

{#- ---- dates and times ---- -#}

{#- An interval of `days` days (a number), to add to or subtract from a timestamp. -#}
{% macro cdp_days(days) -%}
    {{ return(adapter.dispatch('cdp_days', 'cdp')(days)) }}
{%- endmacro %}

{% macro default__cdp_days(days) -%}
    to_days({{ days }})
{%- endmacro %}

{% macro spark__cdp_days(days) -%}
    make_dt_interval({{ days }})
{%- endmacro %}

{#- Whole `part`s (day, second) from `start` to `end`: boundaries crossed, as DuckDB's
    date_diff counts them. -#}
{% macro cdp_date_diff(part, start, end) -%}
    {{ return(adapter.dispatch('cdp_date_diff', 'cdp')(part, start, end)) }}
{%- endmacro %}

{% macro default__cdp_date_diff(part, start, end) -%}
    date_diff('{{ part }}', {{ start }}, {{ end }})
{%- endmacro %}

{% macro spark__cdp_date_diff(part, start, end) -%}
    {%- if part == 'day' -%}
        datediff(cast({{ end }} as date), cast({{ start }} as date))
    {%- elif part == 'second' -%}
        (unix_seconds(cast({{ end }} as timestamp_ltz)) - unix_seconds(cast({{ start }} as timestamp_ltz)))
    {%- else -%}
        {{ exceptions.raise_compiler_error("cdp_date_diff: unsupported part " ~ part) }}
    {%- endif -%}
{%- endmacro %}

{#- ---- aggregates ---- -#}

{#- `value` of the row with the smallest `ordering`, among rows where `value` is not
    null (DuckDB's arg_min skips them; Spark's min_by does not) and `filter` holds. -#}
{% macro cdp_arg_min(value, ordering, filter=none) -%}
    {{ return(adapter.dispatch('cdp_arg_min', 'cdp')(value, ordering, filter)) }}
{%- endmacro %}

{% macro default__cdp_arg_min(value, ordering, filter) -%}
    arg_min({{ value }}, {{ ordering }}){% if filter %} filter (where {{ filter }}){% endif %}
{%- endmacro %}

{% macro spark__cdp_arg_min(value, ordering, filter) -%}
    min_by({{ value }}, {{ ordering }}) filter (where {{ value }} is not null{% if filter %} and ({{ filter }}){% endif %})
{%- endmacro %}

{#- The first `value` in an order: `order_by` is a list of (expression, direction, kind),
    direction asc (nulls last) or desc (nulls last), kind one of text, number, boolean,
    timestamp (Spark sorts a key of those; DuckDB takes the ORDER BY as is). -#}
{% macro cdp_first(value, order_by) -%}
    {{ return(adapter.dispatch('cdp_first', 'cdp')(value, order_by)) }}
{%- endmacro %}

{% macro default__cdp_first(value, order_by) -%}
    first({{ value }} order by {% for expr, direction, kind in order_by -%}
        {{ expr }} {{ direction }}{% if direction == 'desc' %} nulls last{% endif %}{% if not loop.last %}, {% endif %}
    {%- endfor %})
{%- endmacro %}

{#- min_by over a struct key: per item, "is null" first (nulls last either way), then the
    value, negated for desc (text can only be ascending). -#}
{% macro spark__cdp_first(value, order_by) -%}
    min_by({{ value }}, named_struct(
    {%- for expr, direction, kind in order_by %}
        'n{{ loop.index }}', ({{ expr }}) is null,
        {%- if direction == 'asc' %}
        'k{{ loop.index }}', {{ expr }}
        {%- elif kind == 'number' %}
        'k{{ loop.index }}', -({{ expr }})
        {%- elif kind == 'boolean' %}
        'k{{ loop.index }}', not ({{ expr }})
        {%- elif kind == 'timestamp' %}
        'k{{ loop.index }}', -unix_micros(cast({{ expr }} as timestamp_ltz))
        {%- else %}
        {{ exceptions.raise_compiler_error("cdp_first: cannot order " ~ kind ~ " descending") }}
        {%- endif %}{% if not loop.last %},{% endif %}
    {%- endfor %}
    ))
{%- endmacro %}

{#- The distinct non-null values, sorted, as a list. -#}
{% macro list_distinct_sorted(expr) -%}
    {{ return(adapter.dispatch('list_distinct_sorted', 'cdp')(expr)) }}
{%- endmacro %}

{% macro default__list_distinct_sorted(expr) -%}
    list(distinct {{ expr }} order by {{ expr }})
{%- endmacro %}

{% macro spark__list_distinct_sorted(expr) -%}
    array_sort(collect_set({{ expr }}))
{%- endmacro %}

{#- The first `n` values of `expr` in ascending order, as a list. -#}
{% macro list_first_sorted(expr, n) -%}
    {{ return(adapter.dispatch('list_first_sorted', 'cdp')(expr, n)) }}
{%- endmacro %}

{% macro default__list_first_sorted(expr, n) -%}
    list({{ expr }} order by {{ expr }})[1:{{ n }}]
{%- endmacro %}

{% macro spark__list_first_sorted(expr, n) -%}
    slice(array_sort(collect_list({{ expr }})), 1, {{ n }})
{%- endmacro %}

{#- `expr` of every row, joined with `separator`, where `filter` holds. -#}
{% macro cdp_string_agg(expr, separator, filter=none) -%}
    {{ return(adapter.dispatch('cdp_string_agg', 'cdp')(expr, separator, filter)) }}
{%- endmacro %}

{% macro default__cdp_string_agg(expr, separator, filter) -%}
    string_agg({{ expr }}, {{ cdp_regex(separator) }}){% if filter %} filter (where {{ filter }}){% endif %}
{%- endmacro %}

{% macro spark__cdp_string_agg(expr, separator, filter) -%}
    array_join(collect_list({{ expr }}){% if filter %} filter (where {{ filter }}){% endif %}, {{ cdp_regex(separator) }})
{%- endmacro %}

{#- A map from `key` to `value` over the rows of a group, keys in order. -#}
{% macro cdp_map_agg(key, value) -%}
    {{ return(adapter.dispatch('cdp_map_agg', 'cdp')(key, value)) }}
{%- endmacro %}

{% macro default__cdp_map_agg(key, value) -%}
    map(
        list({{ key }} order by {{ key }}),
        list({{ value }} order by {{ key }})
    )
{%- endmacro %}

{% macro spark__cdp_map_agg(key, value) -%}
    map_from_entries(array_sort(collect_list(struct({{ key }} as key, {{ value }} as value))))
{%- endmacro %}

{#- 1-based position of `expr` in a list of text literals, null when absent. -#}
{% macro list_position(values, expr) -%}
    {{ return(adapter.dispatch('list_position', 'cdp')(values, expr)) }}
{%- endmacro %}

{% macro default__list_position(values, expr) -%}
    list_position([{% for n in values %}'{{ n }}'{% if not loop.last %}, {% endif %}{% endfor %}], {{ expr }})
{%- endmacro %}

{% macro spark__list_position(values, expr) -%}
    nullif(array_position(array({% for n in values %}'{{ n }}'{% if not loop.last %}, {% endif %}{% endfor %}), {{ expr }}), 0)
{%- endmacro %}

{#- SQL written out for each engine (a segment filter, rendered from one syntax tree in
    each dialect by cdp.activate.compile). -#}
{% macro by_engine(duckdb_sql, spark_sql) -%}
    {{ return(adapter.dispatch('by_engine', 'cdp')(duckdb_sql, spark_sql)) }}
{%- endmacro %}

{% macro default__by_engine(duckdb_sql, spark_sql) -%}
    {{ duckdb_sql }}
{%- endmacro %}

{% macro spark__by_engine(duckdb_sql, spark_sql) -%}
    {{ spark_sql }}
{%- endmacro %}

{#- ---- checks ---- -#}

{#- True where `condition` holds; stops the query with `message` where it does not. -#}
{% macro cdp_check(condition, message) -%}
    {{ return(adapter.dispatch('cdp_check', 'cdp')(condition, message)) }}
{%- endmacro %}

{% macro default__cdp_check(condition, message) -%}
    (case when {{ condition }} then true else error('{{ message | replace("'", "''") }}') end)
{%- endmacro %}

{% macro spark__cdp_check(condition, message) -%}
    (case when {{ condition }} then true else raise_error('{{ message | replace("'", "''") }}') end)
{%- endmacro %}

{#- ---- query plans ---- -#}

{#- Between a CTE's name and its body (`name as {{ cdp_inlined() }} (...)`): each use of
    the CTE reads its source again with its own filters, rather than the engine keeping
    every row of it once for all uses (DuckDB's choice when a CTE is used more than once;
    Spark inlines CTEs anyway). -#}
{% macro cdp_inlined() -%}
    {{ return(adapter.dispatch('cdp_inlined', 'cdp')()) }}
{%- endmacro %}

{% macro default__cdp_inlined() -%}
    not materialized
{%- endmacro %}

{% macro spark__cdp_inlined() -%}
{%- endmacro %}
