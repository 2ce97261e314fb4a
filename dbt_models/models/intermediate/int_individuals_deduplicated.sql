with

unioned as (
    select * from {{ ref('int_individuals_unioned') }}
),

placeholder_words as (
    select * from {{ ref('placeholder_first_names') }}
),

latest as (
    {{ dedupe_latest('unioned', ['source_name', 'source_record_id']) }}
),

-- a folded first name made only of placeholder words ("malechild", "ladyofthe"): at
-- least one real placeholder word, fillers ("of", "the") only beside it
placeholder_pattern as (
    select
        '(' || {{ cdp_string_agg('word', '|', "kind = 'filler'") }} || ')*'
        || '(' || {{ cdp_string_agg('word', '|', "kind <> 'filler'") }} || ')'
        || '(' || {{ cdp_string_agg('word', '|') }} || ')*' as pattern
    from placeholder_words
),

final as (
    select
        {{ star_except(['first_name_key'], 'latest') }},
        coalesce(
            {{ regexp_full_match('latest.first_name_key', 'placeholder_pattern.pattern') }}, false
        ) as first_name_is_placeholder,
        case
            when not first_name_is_placeholder then latest.first_name_key
        end as first_name_key
    from latest
    cross join placeholder_pattern
)

select * from final
