{#- int_contact_keys_resolved on a marts increment (macros/increment.sql for the layer).

    A key's row (how many unified individuals hold an email or phone, and which one when
    only one does) depends only on the email and phone rows carrying it and the links of
    their person records. So the keys whose row can have changed are those carried:
    - by an email or phone row of a new load, now or as the last marts build read the
      same records (lake/marts/_seen: an edit takes a key from its record); every record
      of a snapshot source with a new load, old and new;
    - by a person record whose link is not the one the last build read
      (int_links_changed: linked since, moved to another person, or no longer linked).
    The CTE `again` (key_type, key_value), from the model's `emails` and `phones`. -#}
{% macro contact_keys_again(increment) -%}
links_changed as (
    select source_name, source_record_id
    from {{ ref('int_links_changed') }}
    where record_kind = 'person'
),

{%- for table, column in [('emails', 'email_match_key'), ('phones', 'phone_e164')] %}

{{ table }}_again as (
    {{ rows_loaded_again(table, 'source_name, source_record_id, ' ~ column ~ ' as key_value', increment) }}
),

{{ table }}_keys_again as (
    select key_value from {{ table }}_again
    union
    -- the same records as the last build read them
    {{ rows_as_last_seen('int_contact_point_' ~ table ~ '_deduplicated', column, table ~ '_again', increment) }}
    union
    select {{ table }}.{{ column }}
    from {{ table }}
    semi join links_changed using (source_name, source_record_id)
),
{%- endfor %}

again as (
    select 'email' as key_type, key_value from emails_keys_again where key_value is not null
    union all
    select 'phone' as key_type, key_value from phones_keys_again where key_value is not null
),
{%- endmacro %}
