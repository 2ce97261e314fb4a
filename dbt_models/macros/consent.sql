{#- individual_consent on a marts increment (macros/increment.sql for the layer).

    A person's consent depends only on their person records (the links), the emails and
    phones those records hold, and the consent records naming one of the records or one
    of those emails or phones. So the people it can change for are:
    - those int_unified_individuals_changed lists: identity changed their records, or a
      new load holds one of their records' rows (a name, email, phone or address);
    - those a consent record of a new load names, now (its new row) or before (its row
      as the last marts build read it, lake/marts/_seen: an edit that moves a consent to
      another email takes it from the first holder too); every record of a snapshot
      source with a new load, old and new.
    A person named only through a key is found through whoever holds that key now: one
    who held it before and not now has a changed record, so is in the first group.

    The CTEs `named` (what those consent records name), `named_keys` and `affected` (the
    people decided again), from the model's `consents`, `links`, `emails` and `phones`. -#}
{% macro consent_again(increment) -%}
    {%- set naming = 'source_name, source_record_id, individual_source_name, '
        ~ 'individual_source_record_id, email_match_key, individual_email_match_key, '
        ~ 'phone_e164, individual_phone_e164' %}
named_now as (
    {{ rows_loaded_again('consents', naming, increment) }}
),

named as (
    select * from named_now
    union all
    -- the same records as the last build read them (none for a new record)
    {{ rows_as_last_seen('int_contact_point_consents_deduplicated', naming, 'named_now', increment) }}
),

named_keys as (
    select email_match_key as email, phone_e164 as phone from named
    union
    select individual_email_match_key, individual_phone_e164 from named
),

affected as (
    select unified_individual_id from {{ ref('int_unified_individuals_changed') }}
    union
    select links.unified_individual_id
    from links
    semi join named
        on
            links.source_name = named.individual_source_name
            and links.source_record_id = named.individual_source_record_id
    where links.record_kind = 'person'
    union
    select links.unified_individual_id
    from links
    semi join (
        select source_name, source_record_id
        from emails
        where email_match_key in (select email from named_keys)
        union
        select source_name, source_record_id
        from phones
        where phone_e164 in (select phone from named_keys)
    ) as holding using (source_name, source_record_id)
    where links.record_kind = 'person'
),
{%- endmacro %}
