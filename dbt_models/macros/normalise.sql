{#- Normalisation rules used by the staging models. Each returns a SQL expression. -#}

{#- Engine-specific functions and types go through macros/engine/functions.sql. -#}

{% macro clean_text(col) -%}
    nullif(trim({{ nfc_normalize('cast(' ~ col ~ ' as ' ~ cdp_type('varchar') ~ ')') }}), '')
{%- endmacro %}

{% macro normalise_email(col) -%}
    nullif(lower(trim(cast({{ col }} as {{ cdp_type('varchar') }}))), '')
{%- endmacro %}

{#- Well formed: one @, a dot-TLD, no spaces. Placeholder addresses (the email_address_rules
    seed) are set aside in int_contact_point_emails_deduplicated. -#}
{% macro email_is_valid(email) -%}
    coalesce(
        {{ regexp_full_match(email, cdp_regex("[a-z0-9._%+'-]+@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}")) }},
        false
    )
{%- endmacro %}

{#- The key two emails of one mailbox share: +tags dropped; gmail also ignores dots. -#}
{% macro email_match_key(email) -%}
    case
        when {{ email_is_valid(email) }} then
            case
                when split_part({{ email }}, '@', 2) in ('gmail.com', 'googlemail.com')
                    then replace(split_part(split_part({{ email }}, '@', 1), '+', 1), '.', '') || '@gmail.com'
                else split_part(split_part({{ email }}, '@', 1), '+', 1) || '@' || split_part({{ email }}, '@', 2)
            end
    end
{%- endmacro %}

{#- E.164 through phonenumbers (the cdp_phone_e164 function). A number without a country
    code is read in the row's region (`region_col`, e.g. the mapped country), else in the
    workspace's default_region. -#}
{% macro phone_e164(col, region_col=none) -%}
    {%- set default_region = "'" ~ env_var("CDP_DEFAULT_REGION", "US") ~ "'" -%}
    cdp_phone_e164(
        {{ clean_text(col) }},
        {% if region_col %}coalesce({{ clean_text(region_col) }}, {{ default_region }}){% else %}{{ default_region }}{% endif %}
    )
{%- endmacro %}

{#- Titles are split off the first name, suffixes off the last name. -#}
{% macro title_pattern() %}{{ return('^(mr|mrs|ms|miss|mx|dr|prof|sir)\\.?\\s+') }}{% endmacro %}
{% macro suffix_pattern() %}{{ return('[\\s,]+(jr|sr|ii|iii|iv|phd|md|esq)\\.?$') }}{% endmacro %}

{% macro strip_title(col) -%}
    nullif({{ cdp_regexp_replace(clean_text(col), title_pattern(), '', 'i') }}, '')
{%- endmacro %}

{% macro extract_title(col) -%}
    nullif({{ cdp_regexp_extract(clean_text(col), title_pattern(), 1, 'i') }}, '')
{%- endmacro %}

{% macro strip_suffix(col) -%}
    nullif({{ cdp_regexp_replace(clean_text(col), suffix_pattern(), '', 'i') }}, '')
{%- endmacro %}

{% macro extract_suffix(col) -%}
    nullif({{ cdp_regexp_extract(clean_text(col), suffix_pattern(), 1, 'i') }}, '')
{%- endmacro %}

{% macro normalise_gender(col) -%}
    case lower(trim(cast({{ col }} as {{ cdp_type('varchar') }})))
        when 'm' then 'M' when 'male' then 'M' when 'man' then 'M'
        when 'f' then 'F' when 'female' then 'F' when 'woman' then 'F'
        when '' then null
        else case when {{ col }} is null then null else 'X' end
    end
{%- endmacro %}

{#- Street line as a match key: folded case, punctuation gone, street types abbreviated. -#}
{% macro address_line_key(col) -%}
    {%- set types = [
        ('street', 'st'), ('avenue', 'ave'), ('road', 'rd'), ('drive', 'dr'), ('lane', 'ln'),
        ('boulevard', 'blvd'), ('court', 'ct'), ('place', 'pl'), ('terrace', 'ter'),
        ('highway', 'hwy'), ('parkway', 'pkwy'), ('circle', 'cir'), ('square', 'sq'),
        ('apartment', 'apt'), ('suite', 'ste'), ('unit', 'apt'), ('north', 'n'), ('south', 's'),
        ('east', 'e'), ('west', 'w')
    ] -%}
    {%- set ns = namespace(expr="lower(" ~ strip_accents(clean_text(col)) ~ ")") -%}
    {%- set ns.expr = cdp_regexp_replace(ns.expr, '#\\s*', ' apt ', 'g') -%}
    {%- set ns.expr = cdp_regexp_replace(ns.expr, '[^a-z0-9]+', ' ', 'g') -%}
    {%- for long, short in types -%}
        {%- set ns.expr = cdp_regexp_replace(ns.expr, '\\b' ~ long ~ '\\b', short, 'g') -%}
    {%- endfor -%}
    nullif(trim({{ cdp_regexp_replace(ns.expr, '\\s+', ' ', 'g') }}), '')
{%- endmacro %}

{#- Postal code: no spaces, upper case; a US ZIP+4 keeps its five digits. -#}
{% macro postal_code_key(col) -%}
    {%- set text = 'trim(cast(' ~ col ~ ' as ' ~ cdp_type('varchar') ~ '))' -%}
    case
        when {{ regexp_full_match("upper(replace(" ~ text ~ ", ' ', ''))", cdp_regex('\\d{5}(-?\\d{4})?')) }}
            then left({{ text }}, 5)
        else nullif(upper(replace(replace({{ text }}, ' ', ''), '-', '')), '')
    end
{%- endmacro %}
