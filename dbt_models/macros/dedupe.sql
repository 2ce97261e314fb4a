{#- Keep the latest version of each source row: by updated_at, then load order, then
    position in the file (a later row of the same file wins). -#}
{% macro dedupe_latest(relation, partition_by) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ partition_by | join(', ') }}
        order by updated_ts desc nulls last, _load_id desc, _row_number desc
    ) = 1
{%- endmacro %}
