-- depends_on: {{ ref('int_unified_individuals_changed') }}
-- depends_on: {{ source('identity', 'identity_clusters') }}
{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/unified_contact_point.parquet',
    tags=['marts'],
) }}

-- Every email, phone and postal address of a unified individual, one row per distinct
-- value (an email by its mailbox match key, a phone by E.164, an address by its street
-- and postal code key), ranked within its channel: usable values first (valid; for
-- email, personal before role mailboxes), then the channel's rule in cdp.yml
-- reconciliation (email, phone, address; most_recent by default). The first usable one
-- is the best (is_best): customer_360 takes its contact points from those rows.
-- An increment computes only the people int_unified_individuals_changed lists and keeps
-- last run's rows of everyone else who is still a unified individual.

{%- set increment = marts_increment() %}
{%- set address_parts_type = cdp_struct_type([
    ('address_line1', 'varchar'), ('city', 'varchar'), ('postal_code', 'varchar'),
    ('region', 'varchar'), ('country', 'varchar')
]) %}
{%- set address_order = [
    ('addresses.updated_ts', 'desc', 'timestamp'), ('addresses.contact_point_id', 'asc', 'text')
] %}

with

links as (
    select * from {{ source('identity', 'unified_link_individual') }}
    {%- if increment %}
        semi join {{ ref('int_unified_individuals_changed') }} as changed
            using (unified_individual_id)
    {%- endif %}
),

emails as (
    select * from {{ ref('int_contact_point_emails_deduplicated') }}
),

phones as (
    select * from {{ ref('int_contact_point_phones_deduplicated') }}
),

addresses as (
    select * from {{ ref('int_contact_point_addresses_deduplicated') }}
),

person_links as (
    select
        unified_individual_id,
        source_name,
        source_record_id
    from links
    where record_kind = 'person'
),

email_values as (
    select
        person_links.unified_individual_id,
        'email' as channel,
        coalesce(emails.email_match_key, emails.email_address) as match_key,
        {{ cdp_first('emails.email_address', [
            ('emails.updated_ts', 'desc', 'timestamp'), ('emails.email_address', 'asc', 'text')
        ]) }} as contact_value,
        cast(null as {{ address_parts_type }}) as address_parts,
        bool_or(emails.is_valid) as is_valid,
        bool_or(emails.is_personal) as is_personal,
        count(distinct emails.source_name || ':' || emails.source_record_id) as n,
        max(emails.updated_ts) as latest_ts,
        min({{ source_priority_rank('emails.source_name') }}) as priority,
        {{ list_distinct_sorted('emails.source_name') }} as sources
    from emails
    inner join person_links using (source_name, source_record_id)
    where emails.email_address is not null
    group by person_links.unified_individual_id, coalesce(emails.email_match_key, emails.email_address)
),

phone_values as (
    select
        person_links.unified_individual_id,
        'phone' as channel,
        coalesce(phones.phone_e164, phones.phone_number) as match_key,
        coalesce(
            phones.phone_e164,
            {{ cdp_first('phones.phone_number', [
                ('phones.updated_ts', 'desc', 'timestamp'), ('phones.phone_number', 'asc', 'text')
            ]) }}
        ) as contact_value,
        cast(null as {{ address_parts_type }}) as address_parts,
        bool_or(phones.is_valid) as is_valid,
        true as is_personal,
        count(distinct phones.source_name || ':' || phones.source_record_id) as n,
        max(phones.updated_ts) as latest_ts,
        min({{ source_priority_rank('phones.source_name') }}) as priority,
        {{ list_distinct_sorted('phones.source_name') }} as sources
    from phones
    inner join person_links using (source_name, source_record_id)
    where phones.phone_number is not null
    group by person_links.unified_individual_id, coalesce(phones.phone_e164, phones.phone_number), phones.phone_e164
),

address_values as (
    select
        person_links.unified_individual_id,
        'address' as channel,
        coalesce(addresses.address_key, addresses.address_line1) as match_key,
        {{ cdp_first('addresses.address_line1', address_order) }} as contact_value,
        {{ cdp_first(cdp_struct([
            ('address_line1', 'addresses.address_line1'),
            ('city', 'addresses.city'),
            ('postal_code', 'addresses.postal_code'),
            ('region', 'addresses.region'),
            ('country', 'addresses.country')
        ]), address_order) }} as address_parts,
        true as is_valid,
        true as is_personal,
        count(distinct addresses.source_name || ':' || addresses.source_record_id) as n,
        max(addresses.updated_ts) as latest_ts,
        min({{ source_priority_rank('addresses.source_name') }}) as priority,
        {{ list_distinct_sorted('addresses.source_name') }} as sources
    from addresses
    inner join person_links using (source_name, source_record_id)
    where addresses.address_line1 is not null
    group by person_links.unified_individual_id, coalesce(addresses.address_key, addresses.address_line1)
),

-- Each channel is ranked on its own rows: one window pass per row (a CASE over three
-- windows made DuckDB compute all three for every row, a third of the model's time).
email_ranked as (
    select
        *,
        row_number() over (
            partition by unified_individual_id
            order by is_valid desc, is_personal desc, {{ reconcile_order_by('email', 'match_key') }}
        ) as contact_rank
    from email_values
),

phone_ranked as (
    select
        *,
        row_number() over (
            partition by unified_individual_id
            order by is_valid desc, {{ reconcile_order_by('phone', 'match_key') }}
        ) as contact_rank
    from phone_values
),

address_ranked as (
    select
        *,
        row_number() over (
            partition by unified_individual_id
            order by {{ reconcile_order_by('address', 'match_key') }}
        ) as contact_rank
    from address_values
),

ranked as (
    select * from email_ranked
    union all
    select * from phone_ranked
    union all
    select * from address_ranked
),

final as (
    select
        ranked.unified_individual_id,
        ranked.channel,
        ranked.match_key,
        ranked.contact_value,
        ranked.address_parts.address_line1,
        ranked.address_parts.city,
        ranked.address_parts.postal_code,
        ranked.address_parts.region,
        ranked.address_parts.country,
        ranked.is_valid,
        ranked.is_personal,
        ranked.sources,
        ranked.n as record_count,
        ranked.latest_ts as last_seen_ts,
        ranked.contact_rank,
        ranked.contact_rank = 1 and ranked.is_valid as is_best
    from ranked
),

{{ with_unchanged_people('unified_contact_point', increment) }}

select * from result
-- a fixed row order: two runs on the same data write the same bytes
order by unified_individual_id, channel, contact_rank
