{#- Rows for which a boolean SQL expression over the model's columns is false: several
    invariants of one model in one query. A null result passes. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
