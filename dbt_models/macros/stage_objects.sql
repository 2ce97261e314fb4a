{#-
  The last step of every generated staging model: from the mapped canonical columns
  to the staged object, adding normalised values and match keys. One macro per object
  keeps the shape of an object identical across sources.
-#}

{% macro cdp_stage(object_name, relation) -%}
    {%- set m = context.get('cdp_stage__' ~ object_name) -%}
    {%- if m -%}{{ m(relation) }}{%- else -%}select * from {{ relation }}{%- endif -%}
{%- endmacro %}

{% macro cdp_stage__individual(relation) -%}
    select
        {{ star_except(['salutation', 'first_name', 'middle_name', 'last_name', 'suffix', 'gender']) }},
        coalesce({{ clean_text('salutation') }}, {{ extract_title('first_name') }}) as salutation,
        {{ strip_title('first_name') }} as first_name,
        {{ clean_text('middle_name') }} as middle_name,
        {{ strip_suffix('last_name') }} as last_name,
        coalesce({{ clean_text('suffix') }}, {{ extract_suffix('last_name') }}) as suffix,
        cdp_fold({{ strip_title('first_name') }}) as first_name_key,
        cdp_fold({{ strip_suffix('last_name') }}) as last_name_key,
        {{ normalise_gender('gender') }} as gender
    from {{ relation }}
{%- endmacro %}

{% macro cdp_stage__contact_point_email(relation) -%}
    select
        {{ star_except(['email_address']) }},
        {{ normalise_email('email_address') }} as email_address,
        {{ email_match_key(normalise_email('email_address')) }} as email_match_key,
        {{ email_is_valid(normalise_email('email_address')) }} as is_valid
    from {{ relation }}
{%- endmacro %}

{% macro cdp_stage__contact_point_phone(relation) -%}
    {#- is_valid reads the parsed column: parsing (a Python function) happens once a row -#}
    select
        *,
        phone_e164 is not null as is_valid
    from (
        select
            {{ star_except(['phone_number']) }},
            {{ clean_text('phone_number') }} as phone_number,
            {{ phone_e164('phone_number', 'country') }} as phone_e164
        from {{ relation }}
    ) as parsed
{%- endmacro %}

{% macro cdp_stage__contact_point_address(relation) -%}
    select
        {{ star_except(['address_line1', 'address_line2', 'city', 'postal_code', 'region', 'country']) }},
        {{ clean_text('address_line1') }} as address_line1,
        {{ clean_text('address_line2') }} as address_line2,
        {{ clean_text('city') }} as city,
        {{ clean_text('postal_code') }} as postal_code,
        upper({{ clean_text('region') }}) as region,
        upper({{ clean_text('country') }}) as country,
        {{ address_line_key('address_line1') }} as address_line1_key,
        cdp_fold({{ clean_text('city') }}) as city_key,
        {{ postal_code_key('postal_code') }} as postal_code_key,
        {{ address_line_key('address_line1') }} || '|' || coalesce({{ postal_code_key('postal_code') }}, '') as address_key
    from {{ relation }}
{%- endmacro %}

{% macro cdp_stage__party_identification(relation) -%}
    select
        {{ star_except(['type', 'number']) }},
        lower({{ clean_text('type') }}) as identification_type,
        {{ clean_text('number') }} as identification_number
    from {{ relation }}
{%- endmacro %}

{% macro cdp_stage__contact_point_consent(relation) -%}
    select
        {{ star_except(['email_address', 'phone_number', 'purpose', 'channel', 'status']) }},
        {{ normalise_email('email_address') }} as email_address,
        {{ email_match_key(normalise_email('email_address')) }} as email_match_key,
        {{ clean_text('phone_number') }} as phone_number,
        {{ phone_e164('phone_number') }} as phone_e164,
        lower({{ clean_text('purpose') }}) as purpose,
        lower({{ clean_text('channel') }}) as channel,
        lower({{ clean_text('status') }}) as status
    from {{ relation }}
{%- endmacro %}

{% macro cdp_stage__engagement_email(relation) -%}
    select
        {{ star_except(['email_address', 'event_type']) }},
        {{ normalise_email('email_address') }} as email_address,
        lower({{ clean_text('event_type') }}) as event_type
    from {{ relation }}
{%- endmacro %}
