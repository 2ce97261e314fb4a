-- Every canonical row keeps the way back to what the source system sent.
{% set models = [
    'int_individuals_deduplicated', 'int_contact_point_emails_deduplicated',
    'int_contact_point_phones_deduplicated', 'int_contact_point_addresses_deduplicated',
    'int_party_identifications_deduplicated', 'int_sales_orders_deduplicated',
    'int_sales_order_lines_deduplicated', 'int_products_deduplicated',
    'int_engagement_emails_deduplicated', 'int_engagement_webs_deduplicated',
    'int_service_cases_deduplicated', 'int_contact_point_consents_deduplicated'
] %}
{% for m in models %}
select '{{ m }}' as model, count(*) as missing
from {{ ref(m) }}
where source_name is null or source_record_id is null
having count(*) > 0
{% if not loop.last %}union all{% endif %}
{% endfor %}
