"""The dbt project, shipped inside the wheel as package data.

Nothing here is Python: this file only makes `dbt_models/` a package, so an installed
`cdp` finds its dbt project (cdp.harmonise.dbt_env.DBT_PROJECT_DIR) without a checkout.
"""
