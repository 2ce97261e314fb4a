-- The reporting currency (cdp.yml insights.reporting_currency) must have a rate in the
-- seed currency_rates, or no amount could be converted.
{{ config(tags=['marts']) }}

select '{{ env_var("CDP_REPORTING_CURRENCY") }}' as reporting_currency
where not exists (
    select 1
    from {{ ref('currency_rates') }}
    where currency = '{{ env_var("CDP_REPORTING_CURRENCY") }}'
)
