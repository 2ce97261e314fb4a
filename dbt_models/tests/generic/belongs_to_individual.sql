{% test belongs_to_individual(model, source_column='source_name', record_column='source_record_id') %}
-- Rows pointing at a person record that does not exist in int_individuals_deduplicated.
select m.*
-- (on an increment, `model` may be a subquery with an alias of its own: macros/increment_tests.sql)
from (select * from {{ model }}) as m
left join {{ ref('int_individuals_deduplicated') }} as i
    on m.{{ source_column }} = i.source_name and m.{{ record_column }} = i.source_record_id
where m.{{ record_column }} is not null and i.source_record_id is null
{% endtest %}
