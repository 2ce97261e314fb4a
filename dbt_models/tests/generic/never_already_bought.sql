{#- A recommended product the person already bought (int_order_lines_attributed). -#}
{% test never_already_bought(model, person_column='unified_individual_id', product_column='next_best_product') %}
    select recommended.*
    from {{ model }} as recommended
    inner join {{ ref('int_order_lines_attributed') }} as bought
        on
            recommended.{{ person_column }} = bought.unified_individual_id
            and recommended.{{ product_column }} = bought.sku
{% endtest %}
