{{ config(
    materialized='external',
    location=env_var('CDP_WORKSPACE') ~ '/lake/marts/customer_360.parquet',
    tags=['marts'],
) }}

with

unified_individuals as (
    select * from {{ ref('unified_individual') }}
),

links as (
    select * from {{ source('identity', 'unified_link_individual') }}
),

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

orders as (
    select * from {{ ref('int_sales_orders_deduplicated') }}
),

email_events as (
    select * from {{ ref('int_engagement_emails_deduplicated') }}
),

web_events as (
    select * from {{ ref('int_engagement_webs_deduplicated') }}
),

cases as (
    select * from {{ ref('int_service_cases_deduplicated') }}
),

-- each person record with its unified id and recency, to pick the freshest contact point
records as (
    select
        links.unified_individual_id,
        links.source_name,
        links.source_record_id,
        individuals.updated_ts
    from links
    inner join individuals
        on
            links.source_name = individuals.source_name
            and links.source_record_id = individuals.source_record_id
),

best_email as (
    select
        records.unified_individual_id,
        arg_max(emails.email_address, coalesce(records.updated_ts, timestamp '1900-01-01')) as email_address,
        arg_max(emails.email_match_key, coalesce(records.updated_ts, timestamp '1900-01-01')) as email_match_key,
        count(distinct emails.email_match_key) as email_count
    from records
    inner join emails
        on
            records.source_name = emails.source_name
            and records.source_record_id = emails.source_record_id
    where emails.is_valid
    group by records.unified_individual_id
),

best_phone as (
    select
        records.unified_individual_id,
        arg_max(phones.phone_e164, coalesce(records.updated_ts, timestamp '1900-01-01')) as phone_e164,
        count(distinct phones.phone_e164) as phone_count
    from records
    inner join phones
        on
            records.source_name = phones.source_name
            and records.source_record_id = phones.source_record_id
    where phones.is_valid
    group by records.unified_individual_id
),

best_address as (
    select
        records.unified_individual_id,
        arg_max(
            {
                'address_line1': addresses.address_line1,
                'city': addresses.city,
                'postal_code': addresses.postal_code,
                'region': addresses.region,
                'country': addresses.country
            },
            coalesce(records.updated_ts, timestamp '1900-01-01')
        ) as address
    from records
    inner join addresses
        on
            records.source_name = addresses.source_name
            and records.source_record_id = addresses.source_record_id
    where addresses.address_line1 is not null
    group by records.unified_individual_id
),

order_stats as (
    select
        links.unified_individual_id,
        count(*) as order_count,
        sum(orders.amount) as total_spend,
        min(orders.order_ts) as first_order_ts,
        max(orders.order_ts) as last_order_ts
    from orders
    inner join links
        on
            orders.individual_source_name = links.source_name
            and orders.individual_source_record_id = links.source_record_id
    group by links.unified_individual_id
),

email_stats as (
    select
        links.unified_individual_id,
        count(*) filter (where email_events.event_type = 'send') as email_sends,
        count(*) filter (where email_events.event_type = 'open') as email_opens,
        count(*) filter (where email_events.event_type = 'click') as email_clicks,
        max(email_events.event_ts) as last_email_event_ts
    from email_events
    inner join links
        on
            email_events.individual_source_name = links.source_name
            and email_events.individual_source_record_id = links.source_record_id
    group by links.unified_individual_id
),

-- web events belong to a person through a logged-in account or a linked cookie
web_owned as (
    select
        web_events.session_id,
        web_events.event_ts,
        coalesce(by_account.unified_individual_id, by_cookie.unified_individual_id) as unified_individual_id
    from web_events
    left join links as by_account
        on
            web_events.individual_source_name = by_account.source_name
            and web_events.individual_source_record_id = by_account.source_record_id
    left join links as by_cookie
        on
            by_cookie.source_name = 'anonymous_visitor'
            and web_events.anonymous_id = by_cookie.source_record_id
),

web_stats as (
    select
        unified_individual_id,
        count(*) as web_events,
        count(distinct session_id) as web_sessions,
        max(event_ts) as last_web_event_ts
    from web_owned
    where unified_individual_id is not null
    group by unified_individual_id
),

case_stats as (
    select
        links.unified_individual_id,
        count(*) as service_cases,
        count(*) filter (where cases.status is distinct from 'closed') as open_service_cases
    from cases
    inner join links
        on
            cases.individual_source_name = links.source_name
            and cases.individual_source_record_id = links.source_record_id
    group by links.unified_individual_id
),

final as (
    select
        unified_individuals.unified_individual_id,
        unified_individuals.first_name,
        unified_individuals.last_name,
        unified_individuals.birth_date,
        unified_individuals.record_count,
        unified_individuals.source_count,
        best_email.email_address,
        best_email.email_match_key,
        best_phone.phone_e164,
        best_address.address.address_line1,
        best_address.address.city,
        best_address.address.postal_code,
        best_address.address.region,
        best_address.address.country,
        order_stats.first_order_ts,
        order_stats.last_order_ts,
        email_stats.last_email_event_ts,
        web_stats.last_web_event_ts,
        coalesce(order_stats.order_count, 0) as order_count,
        coalesce(order_stats.total_spend, 0) as total_spend,
        coalesce(email_stats.email_sends, 0) as email_sends,
        coalesce(email_stats.email_opens, 0) as email_opens,
        coalesce(email_stats.email_clicks, 0) as email_clicks,
        coalesce(web_stats.web_events, 0) as web_events,
        coalesce(web_stats.web_sessions, 0) as web_sessions,
        coalesce(case_stats.service_cases, 0) as service_cases,
        coalesce(case_stats.open_service_cases, 0) as open_service_cases
    from unified_individuals
    left join best_email using (unified_individual_id)
    left join best_phone using (unified_individual_id)
    left join best_address using (unified_individual_id)
    left join order_stats using (unified_individual_id)
    left join email_stats using (unified_individual_id)
    left join web_stats using (unified_individual_id)
    left join case_stats using (unified_individual_id)
)

select * from final
