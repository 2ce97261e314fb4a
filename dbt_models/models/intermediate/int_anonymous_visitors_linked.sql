-- A login ties an anonymous cookie to a person record: one row per (cookie, record) pair.
with

web_events as (
    select * from {{ ref('int_engagement_webs_deduplicated') }}
),

final as (
    select
        anonymous_id,
        individual_source_name,
        individual_source_record_id,
        min(event_ts) as first_login_ts,
        max(event_ts) as last_login_ts,
        count(*) as login_events
    from web_events
    where
        anonymous_id is not null
        and individual_source_record_id is not null
    group by anonymous_id, individual_source_name, individual_source_record_id
)

select * from final
