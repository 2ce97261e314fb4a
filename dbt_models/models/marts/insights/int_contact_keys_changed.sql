{{ config(
    materialized='external',
    location=env_var('CDP_DBT_WORKSPACE') ~ '/lake/marts/int_contact_keys_changed.parquet',
) }}

{%- set increment = marts_increment() %}

-- The emails and phones whose attribution is not the one the marts' last build read
-- (lake/marts/_seen, cdp.harmonise.increments.keep_seen): their one holder changed, or
-- whether several people hold them, or they appeared or went. Activity naming them is
-- attributed again on an increment (macro activity_again). Empty on a full build.
with

keys as (
    select * from {{ ref('int_contact_keys_resolved') }}
),

{% if increment %}
    seen as (
        select * from {{ seen_input('int_contact_keys_resolved') }}
    ),

    final as (
        select
            key_type,
            key_value
        from keys
        full outer join seen using (key_type, key_value)
        -- what attribute_to_individual reads of a key: its one holder, and whether
        -- several hold it (a key not held at all is neither)
        where
            keys.unified_individual_id is distinct from seen.unified_individual_id
            or coalesce(keys.holders > 1, false) <> coalesce(seen.holders > 1, false)
    )
{% else %}
    final as (
        select
            key_type,
            key_value
        from keys
        where false
    )
{% endif %}

select * from final
-- (the all-null row of an empty key table is not a key)
where key_type is not null
order by key_type, key_value
