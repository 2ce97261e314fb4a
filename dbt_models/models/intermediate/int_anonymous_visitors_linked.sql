-- A login ties an anonymous cookie to a person record: one row per (cookie, record) pair.
-- A web event names its person by the record id (individual_id: {column: ...}), or by an
-- email or phone (individual_id: {email: ...} / {phone: ...}): then the cookie is tied to
-- the person records holding that personal email or valid phone.
with

web_events as (
    select * from {{ ref('int_engagement_webs_deduplicated') }}
),

emails as (
    select * from {{ ref('int_contact_point_emails_deduplicated') }}
),

phones as (
    select * from {{ ref('int_contact_point_phones_deduplicated') }}
),

logins_by_record as (
    select
        anonymous_id,
        individual_source_name,
        individual_source_record_id,
        event_ts,
        'record' as linked_by
    from web_events
    where
        anonymous_id is not null
        and individual_source_record_id is not null
),

logins_by_email as (
    select
        web_events.anonymous_id,
        emails.source_name as individual_source_name,
        emails.source_record_id as individual_source_record_id,
        web_events.event_ts,
        'email' as linked_by
    from web_events
    inner join emails
        on web_events.individual_email_match_key = emails.email_match_key
    where
        web_events.anonymous_id is not null
        and web_events.individual_source_record_id is null
        and emails.is_personal
),

logins_by_phone as (
    select
        web_events.anonymous_id,
        phones.source_name as individual_source_name,
        phones.source_record_id as individual_source_record_id,
        web_events.event_ts,
        'phone' as linked_by
    from web_events
    inner join phones
        on web_events.individual_phone_e164 = phones.phone_e164
    where
        web_events.anonymous_id is not null
        and web_events.individual_source_record_id is null
        and web_events.individual_email_match_key is null
        and phones.is_valid
),

logins as (
    select * from logins_by_record
    union all
    select * from logins_by_email
    union all
    select * from logins_by_phone
),

final as (
    select
        anonymous_id,
        individual_source_name,
        individual_source_record_id,
        min(event_ts) as first_login_ts,
        max(event_ts) as last_login_ts,
        count(*) as login_events,
        {{ cdp_arg_min(
            'linked_by', "case linked_by when 'record' then 1 when 'email' then 2 else 3 end"
        ) }} as linked_by
    from logins
    group by anonymous_id, individual_source_name, individual_source_record_id
)

select * from final
