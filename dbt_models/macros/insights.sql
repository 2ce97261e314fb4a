{#- Shared logic of the insight models (models/marts/insights). -#}

{#- Each row of an activity object with the unified individual it belongs to, found in
    this order: its person record (individual_source_name / individual_source_record_id),
    its cookie when `cookie_column` is given (a linked anonymous visitor), then the email
    match key or E.164 phone it names, when exactly one unified individual holds that
    value (int_contact_keys_resolved). A row matching nobody is kept with a null id;
    `attributed_by` says which way was taken: person_record, anonymous_visitor, email,
    phone, ambiguous (the contact point belongs to several people) or unmatched.
    `links` and `keys` are joined twice each, with different filters: callers inline
    them (cdp_inlined), which saved a tenth of the web events' model at 1M. -#}
{% macro attribute_to_individual(relation, links, keys, cookie_column=none) -%}
    select
        {{ relation }}.*,
        coalesce(
            by_record.unified_individual_id,
            {% if cookie_column %}by_cookie.unified_individual_id,{% endif %}
            by_email.unified_individual_id,
            by_phone.unified_individual_id
        ) as unified_individual_id,
        case
            when by_record.unified_individual_id is not null then 'person_record'
            {% if cookie_column %}
                when by_cookie.unified_individual_id is not null then 'anonymous_visitor'
            {% endif %}
            when by_email.unified_individual_id is not null then 'email'
            when by_phone.unified_individual_id is not null then 'phone'
            when by_email.holders > 1 or by_phone.holders > 1 then 'ambiguous'
            else 'unmatched'
        end as attributed_by
    from {{ relation }}
    left join {{ links }} as by_record
        on
            by_record.record_kind = 'person'
            and {{ relation }}.individual_source_name = by_record.source_name
            and {{ relation }}.individual_source_record_id = by_record.source_record_id
    {% if cookie_column %}
        left join {{ links }} as by_cookie
            on
                by_cookie.record_kind = 'anonymous_visitor'
                and {{ relation }}.{{ cookie_column }} = by_cookie.source_record_id
    {% endif %}
    left join {{ keys }} as by_email
        on
            by_email.key_type = 'email'
            and {{ relation }}.individual_email_match_key = by_email.key_value
    left join {{ keys }} as by_phone
        on
            by_phone.key_type = 'phone'
            and {{ relation }}.individual_phone_e164 = by_phone.key_value
    -- dbt-duckdb writes an empty external model as one all-null row
    where {{ relation }}.source_name is not null
{%- endmacro %}

{#- True when `ts` lies in the `days` days up to as_of_ts: (as_of_ts - days, as_of_ts].
    `offset` days shift the window back (offset=90, days=90: the 90 days before those). -#}
{% macro in_window(ts, days, offset=0) -%}
    (
        {{ ts }} > as_of_ts - {{ cdp_days(days + offset) }}
        and {{ ts }} <= as_of_ts - {{ cdp_days(offset) }}
    )
{%- endmacro %}

{#- A quintile that keeps ties together: 1 + floor(5 × (rank − 1) / n), so equal values
    share a score and the top fifth of values scores 5. -#}
{% macro tied_quintile(order_by) -%}
    cast(1 + floor(5 * (rank() over (order by {{ order_by }}) - 1) / count(*) over ()) as integer)
{%- endmacro %}

{#- Proper case for a name typed in one case: JOHN SMITH and john smith become John Smith,
    o'neil O'Neil, smith-jones Smith-Jones, mcdonald McDonald. A name already in mixed
    case (McDonald, DeVito, van Dyke) is kept as given. -#}
{% macro proper_case(col) -%}
    {{ return(adapter.dispatch('proper_case', 'cdp')(col)) }}
{%- endmacro %}

{#- The case of the letter at position i (1-based) of col: upper at the start of a word
    (after a space, hyphen, apostrophe or full stop) and after a leading Mc; lower
    elsewhere. Shared by both engines, which differ only in their list functions. -#}
{% macro proper_case_letter(col, i) -%}
    case
        when
            {{ i }} = 1
            or substr({{ col }}, {{ i }} - 1, 1) in (' ', '-', '''', '’', '.')
            or (
                {{ i }} >= 3
                and lower(substr({{ col }}, {{ i }} - 2, 2)) = 'mc'
                and ({{ i }} = 3 or substr({{ col }}, {{ i }} - 3, 1) in (' ', '-'))
            )
            then upper(substr({{ col }}, {{ i }}, 1))
        else lower(substr({{ col }}, {{ i }}, 1))
    end
{%- endmacro %}

{% macro default__proper_case(col) -%}
    case
        when {{ col }} is null then null
        when {{ col }} <> upper({{ col }}) and {{ col }} <> lower({{ col }}) then {{ col }}
        else array_to_string(
            list_transform(range(1, length({{ col }}) + 1), lambda i: {{ proper_case_letter(col, 'i') }}),
            ''
        )
    end
{%- endmacro %}

{#- Spark: transform and sequence for list_transform and range; sequence(1, 0) counts
    down, so an empty string is answered before it. -#}
{% macro spark__proper_case(col) -%}
    case
        when {{ col }} is null then null
        when {{ col }} <> upper({{ col }}) and {{ col }} <> lower({{ col }}) then {{ col }}
        when length({{ col }}) = 0 then {{ col }}
        else array_join(
            transform(sequence(1, length({{ col }})), i -> {{ proper_case_letter(col, 'i') }}),
            ''
        )
    end
{%- endmacro %}

{#- The rule for one field of the golden record (cdp.yml `reconciliation:`), as the
    window ordering that puts the winning value first. Each candidate value carries
    `n` (records holding it), `latest_ts` (its most recent record) and `priority` (the
    rank of its best source in reconciliation.source_priority; unlisted sources last).
    Every ordering ends in the value itself, so ties break the same way every run. -#}
{% macro reconcile_order_by(field, value_col, qualifier='') -%}
    {%- set rule = env_var('CDP_RECONCILE_' ~ field | upper) -%}
    {%- set q = qualifier -%}
    {%- if rule == 'most_recent' -%}
        {{ q }}latest_ts desc nulls last, {{ q }}n desc, {{ q }}{{ value_col }} asc
    {%- elif rule == 'most_frequent' -%}
        {{ q }}n desc, {{ q }}latest_ts desc nulls last, {{ q }}{{ value_col }} asc
    {%- elif rule == 'source_priority' -%}
        {{ q }}priority asc, {{ q }}latest_ts desc nulls last, {{ q }}n desc, {{ q }}{{ value_col }} asc
    {%- else -%}
        {{ exceptions.raise_compiler_error("reconciliation." ~ field ~ ": unknown rule " ~ rule) }}
    {%- endif -%}
{%- endmacro %}

{#- The rank of a source in reconciliation.source_priority (1 = most trusted); sources
    not listed come after every listed one. -#}
{% macro source_priority_rank(source_col) -%}
    {%- set names = env_var('CDP_SOURCE_PRIORITY', '').split(',') | reject('equalto', '') | list -%}
    {%- if names -%}
        coalesce({{ list_position(names, source_col) }}, {{ names | length + 1 }})
    {%- else -%}
        1
    {%- endif -%}
{%- endmacro %}
