-- On a harmonise increment only the records a new load touched are staged and
-- deduplicated again; every other record keeps last build's row (with_unchanged_records).
{%- set increment = harmonise_increment() %}

with

unioned as (
    select * from {{ ref('int_individuals_unioned') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id']) }}
),

-- A folded first name made only of placeholder words ("malechild", "ladyofthe"): at
-- least one real placeholder word, fillers ("of", "the") only beside it. The pattern is
-- read from the seed when the model compiles and written in as a literal: a pattern
-- column would make DuckDB compile the regex once per row (19 minutes at 1M customers).
{%- set pattern_sql -%}
    select
        '(' || {{ cdp_string_agg('word', '|', "kind = 'filler'") }} || ')*'
        || '(' || {{ cdp_string_agg('word', '|', "kind <> 'filler'") }} || ')'
        || '(' || {{ cdp_string_agg('word', '|') }} || ')*'
    from {{ ref('placeholder_first_names') }}
{%- endset -%}
{%- set placeholder_pattern = run_query(pattern_sql).columns[0].values()[0] if execute else '' %}

final as (
    select
        {{ star_except(['first_name_key'], 'latest') }},
        coalesce(
            {{ regexp_full_match(
                'latest.first_name_key', "'" ~ (placeholder_pattern | replace("'", "''")) ~ "'"
            ) }},
            false
        ) as first_name_is_placeholder,
        case
            when not first_name_is_placeholder then latest.first_name_key
        end as first_name_key
    from latest
),

{{ with_unchanged_records('int_individuals_deduplicated', increment) }}

select * from result
