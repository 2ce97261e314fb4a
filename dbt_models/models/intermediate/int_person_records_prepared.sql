-- One row per source person record with the keys identity resolution compares and
-- links on. A record's several emails and phones are all kept (the match rules link on
-- any of them); its first personal one is the value Splink compares.
--
-- On a harmonise increment only the records whose row can differ from last build's are
-- computed again (`affected`), counting the holders of their emails and phones only;
-- every other record keeps its row (macro affected_person_records).
{%- set increment = harmonise_increment() %}
with

individuals as (
    select * from {{ ref('int_individuals_deduplicated') }}
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

identifiers as (
    select * from {{ ref('int_party_identifications_deduplicated') }}
),

-- a value held by more records than this is a shared mailbox, a shop's landline or a
-- default: it says nothing about who a record is (identity.max_identifier_records)
limits as (
    select cast({{ env_var('CDP_IDENTITY_MAX_KEY_RECORDS', '5') }} as integer) as max_records
),

{{ affected_person_records(increment) }}

email_use as (
    select
        email_match_key,
        count(distinct source_name || ':' || source_record_id) as records
    from emails
    where is_personal {{- held_by_affected(increment, 'emails', 'email_match_key') }}
    group by email_match_key
),

phone_use as (
    select
        phone_e164,
        count(distinct source_name || ':' || source_record_id) as records
    from phones
    where is_valid {{- held_by_affected(increment, 'phones', 'phone_e164') }}
    group by phone_e164
),

record_emails as (
    select
        emails.source_name,
        emails.source_record_id,
        {{ list_distinct_sorted('emails.email_match_key') }} as emails,
        {{ cdp_arg_min(
            'emails.email_match_key', 'emails.ordinal', 'email_use.records <= limits.max_records'
        ) }} as email_key
    from emails
    inner join email_use using (email_match_key)
    cross join limits
    where emails.is_personal {{- only_affected(increment, 'emails') }}
    group by emails.source_name, emails.source_record_id
),

record_phones as (
    select
        phones.source_name,
        phones.source_record_id,
        {{ list_distinct_sorted('phones.phone_e164') }} as phones,
        {{ cdp_arg_min(
            'phones.phone_e164', 'phones.ordinal', 'phone_use.records <= limits.max_records'
        ) }} as phone
    from phones
    inner join phone_use using (phone_e164)
    cross join limits
    where phones.is_valid {{- only_affected(increment, 'phones') }}
    group by phones.source_name, phones.source_record_id
),

record_addresses as (
    select
        source_name,
        source_record_id,
        {{ cdp_arg_min('address_line1_key', 'ordinal') }} as address_line1_key,
        {{ cdp_arg_min('postal_code_key', 'ordinal') }} as postal_code,
        {{ cdp_arg_min('city_key', 'ordinal') }} as city_key
    from addresses
    where true {{- only_affected(increment, 'addresses') }}
    group by source_name, source_record_id
),

record_identifiers as (
    select
        source_name,
        source_record_id,
        -- sorted: the same record must give the same list every run (identity compares
        -- each record's keys with the last run's to find what changed)
        {{ list_distinct_sorted(cdp_struct([
            ('type', 'identification_type'), ('value', 'identification_number')
        ])) }} as identifiers,
        -- compared by Splink rather than linked on: a national id may carry a typo
        min(identification_number) filter (where identification_type = 'national_id') as national_id
    from identifiers
    where true {{- only_affected(increment, 'identifiers') }}
    group by source_name, source_record_id
),

keyed as (
    select
        individuals.source_name,
        individuals.source_record_id,
        individuals.first_name,
        individuals.last_name,
        individuals.first_name_key,
        individuals.last_name_key,
        cast(individuals.birth_date as {{ cdp_type('varchar') }}) as birth_date,
        record_emails.email_key,
        record_phones.phone,
        record_addresses.address_line1_key,
        record_addresses.postal_code,
        record_addresses.city_key,
        record_identifiers.national_id,
        record_emails.emails,
        record_phones.phones,
        record_identifiers.identifiers,
        individuals.updated_ts,
        individuals.source_name || ':' || individuals.source_record_id as unique_id,
        cdp_name_canon(individuals.first_name_key) as first_name_canon,
        cdp_name_variants(individuals.first_name_key) as first_name_variants,
        nullif({{ cdp_regexp_extract('record_addresses.address_line1_key', '^(\\d+)', 1) }}, '') as house_number
    from individuals
    left join record_emails using (source_name, source_record_id)
    left join record_phones using (source_name, source_record_id)
    left join record_addresses using (source_name, source_record_id)
    left join record_identifiers using (source_name, source_record_id)
    where individuals.source_record_id is not null {{- only_affected(increment, 'individuals') }}
),

final as (
    select
        *,
        -- what identity compares with its last run's to find the records that changed
        {{ person_record_hash() }} as row_hash
    from keyed
),

{{ with_unchanged_person_records(increment) }}

select * from result
