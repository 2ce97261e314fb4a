{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/individual_consent.parquet',
    tags=['marts'],
) }}

-- The current consent of each unified individual, per purpose and channel: the one
-- consent rule that exports, profiles and segments all read. A consent record counts
-- for every unified individual it names: through its person record, or through any
-- email or phone of theirs. It fails closed: a denial or withdrawal without a usable
-- capture time beats any grant, and at the same time a refusal beats a grant.
-- An increment decides again only the people consent_again finds (macros/consent.sql)
-- and keeps last build's rows of everyone else.
{%- set increment = marts_increment() %}
{#- what an increment reads to find the people to decide again (consent_again); named at
    parse time only, so the unit tests need not give them -#}
{%- do parse_time_refs(['int_unified_individuals_changed']) %}
{%- if not execute %}{% do source('identity', 'identity_clusters') %}{% endif %}

with

-- joined five ways below, each reading only the columns and rows it needs (inlined:
-- kept whole once, its 1.9 million rows cost more at 1M)
consents as {{ cdp_inlined() }} (
    select * from {{ ref('int_contact_point_consents_deduplicated') }}
),

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
{{ consent_again(increment) }}
{%- endif %}

person_links as (
    select
        unified_individual_id,
        source_name,
        source_record_id
    from links
    where record_kind = 'person'
    {%- if increment %}
        and unified_individual_id in (select unified_individual_id from affected)
    {%- endif %}
),

held_emails as (
    select distinct
        person_links.unified_individual_id,
        emails.email_match_key
    from person_links
    inner join emails using (source_name, source_record_id)
    where emails.email_match_key is not null
),

held_phones as (
    select distinct
        person_links.unified_individual_id,
        phones.phone_e164
    from person_links
    inner join phones using (source_name, source_record_id)
    where phones.phone_e164 is not null
),

by_record as (
    select
        person_links.unified_individual_id,
        consents.source_name,
        consents.source_record_id
    from consents
    inner join person_links
        on
            consents.individual_source_name = person_links.source_name
            and consents.individual_source_record_id = person_links.source_record_id
),

-- A consent names an email or phone in either of two columns: one equality join per
-- column (a join on `key in (a, b)` cannot hash, and compared every pair: 364 s at 100k).
by_email as (
    select
        held_emails.unified_individual_id,
        consents.source_name,
        consents.source_record_id
    from consents
    inner join held_emails
        on consents.email_match_key = held_emails.email_match_key
    union all
    select
        held_emails.unified_individual_id,
        consents.source_name,
        consents.source_record_id
    from consents
    inner join held_emails
        on consents.individual_email_match_key = held_emails.email_match_key
),

by_phone as (
    select
        held_phones.unified_individual_id,
        consents.source_name,
        consents.source_record_id
    from consents
    inner join held_phones
        on consents.phone_e164 = held_phones.phone_e164
    union all
    select
        held_phones.unified_individual_id,
        consents.source_name,
        consents.source_record_id
    from consents
    inner join held_phones
        on consents.individual_phone_e164 = held_phones.phone_e164
),

attached as (
    select distinct * from (
        select * from by_record
        union all
        select * from by_email
        union all
        select * from by_phone
    ) as attachments
),

records as (
    select
        attached.unified_individual_id,
        consents.source_name,
        consents.source_record_id,
        consents.purpose,
        consents.channel,
        consents.status,
        consents.captured_ts,
        consents.status != 'granted' as is_refusal,
        consents.status != 'granted' and consents.captured_ts is null as is_undated_refusal
    from attached
    inner join consents using (source_name, source_record_id)
    where consents.purpose is not null and consents.channel is not null
),

decided as (
    select
        *,
        count(*) over (
            partition by unified_individual_id, purpose, channel
        ) as consent_records,
        row_number() over (
            partition by unified_individual_id, purpose, channel
            order by
                is_undated_refusal desc,
                captured_ts desc nulls last,
                is_refusal desc,
                source_name asc,
                source_record_id asc
        ) as decision_rank
    from records
),

final as (
    select
        unified_individual_id,
        purpose,
        channel,
        captured_ts,
        source_name as decided_by_source,
        source_record_id as decided_by_record,
        consent_records,
        coalesce(status, 'unknown') as status,
        status = 'granted' as is_granted,
        case
            when is_undated_refusal then 'refusal without a usable time'
            when captured_ts is null then 'grant without a time, nothing dated'
            else 'latest'
        end as decided_by
    from decided
    where decision_rank = 1
),

{%- if increment %}

-- everyone else who is still a unified individual keeps last build's rows
kept as (
    select previous.*
    from {{ previous_output('individual_consent') }} as previous
    semi join {{ source('identity', 'identity_clusters') }} as now using (unified_individual_id)
    anti join affected using (unified_individual_id)
),
{%- endif %}

{{ final_and_kept(increment) }}

select * from result
-- a fixed row order: a rerun on the same data writes the same bytes
order by unified_individual_id, purpose, channel
