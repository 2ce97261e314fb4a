{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_contact_keys_resolved.parquet',
) }}

{%- set increment = marts_increment() %}
{#- what an increment reads to find the keys to count again (contact_keys_again); named
    at parse time only -#}
{%- do parse_time_refs(['int_links_changed']) %}

-- One row per email match key and per E.164 phone found on a person record, with the
-- number of unified individuals holding it. Activity that names its person only by an
-- email or a phone is attributed through here, and only when exactly one person holds it.
-- An increment counts again only the keys whose holders can have changed
-- (macros/contact_keys.sql) and keeps last build's rows of the others.
with

links as (
    select * from {{ source('identity', 'unified_link_individual') }}
),

emails as (
    select * from {{ ref('int_contact_point_emails_deduplicated') }}
),

phones as (
    select * from {{ ref('int_contact_point_phones_deduplicated') }}
),
{%- if increment %}

{{ contact_keys_again(increment) }}
{%- endif %}

held as (
    select
        'email' as key_type,
        emails.email_match_key as key_value,
        links.unified_individual_id
    from emails
    inner join links
        on
            emails.source_name = links.source_name
            and emails.source_record_id = links.source_record_id
    where emails.is_valid
    {%- if increment %}
        and emails.email_match_key in (select again.key_value from again where again.key_type = 'email')
    {%- endif %}

    union all

    select
        'phone' as key_type,
        phones.phone_e164 as key_value,
        links.unified_individual_id
    from phones
    inner join links
        on
            phones.source_name = links.source_name
            and phones.source_record_id = links.source_record_id
    where phones.is_valid
    {%- if increment %}
        and phones.phone_e164 in (select again.key_value from again where again.key_type = 'phone')
    {%- endif %}
),

-- each holder once per key, then one count: two count(distinct ...) per key took a
-- third more time at a million people
distinct_held as (
    select distinct
        key_type,
        key_value,
        unified_individual_id
    from held
    where key_value is not null
),

final as (
    select
        key_type,
        key_value,
        count(*) as holders,
        case when count(*) = 1 then min(unified_individual_id) end as unified_individual_id
    from distinct_held
    group by key_type, key_value
),
{%- if increment %}

kept as (
    select previous.*
    from {{ previous_output('int_contact_keys_resolved') }} as previous
    anti join again using (key_type, key_value)
    -- the all-null row of an empty model's file
    where previous.key_type is not null
),
{%- endif %}

{{ final_and_kept(increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by key_type, key_value
