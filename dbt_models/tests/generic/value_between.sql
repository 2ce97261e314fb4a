{#- Rows whose value lies outside [min_value, max_value] (either bound optional; nulls pass).
    `exclusive_min: true` makes the lower bound strict (a rate must be above zero). -#}
{% test value_between(model, column_name, min_value=none, max_value=none, exclusive_min=false) %}
    select {{ column_name }}
    from {{ model }}
    where
        false
        {% if min_value is not none %}
            or {{ column_name }} {{ '<=' if exclusive_min else '<' }} {{ min_value }}
        {% endif %}
        {% if max_value is not none %}
            or {{ column_name }} > {{ max_value }}
        {% endif %}
{% endtest %}
