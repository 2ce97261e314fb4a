{#- total_spend is kept for segment filters written before lifetime_value: always equal. -#}
{% test lifetime_value_equals_total_spend(model) %}
    select unified_individual_id
    from {{ model }}
    where lifetime_value is distinct from total_spend
{% endtest %}
