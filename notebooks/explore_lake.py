# %% [markdown]
# # Exploring the lake
#
# A notebook in the percent format: open it in Jupyter (with jupytext), VS Code or
# PyCharm as cells, or run it as a script: `CDP_WORKSPACE=data python notebooks/explore_lake.py`.
# It reads the read-only catalog, so it never blocks a pipeline run, through the same
# sandbox as `cdp sql`: files under the workspace's lake/ only.

# %%
from cdp.catalog import connect_catalog
from cdp.workspace import resolve_workspace

ws = resolve_workspace()
con = connect_catalog(ws)


def show(sql: str) -> None:
    print(con.sql(sql))


# %% [markdown]
# ## What landed, and what was set aside

# %%
show(
    """
    select split_part(path, '/', 2) as source, count(*) as files,
        sum(rows_in) as rows_in, sum(rows_kept) as kept, sum(rows_quarantined) as quarantined
    from ingest_manifest group by 1 order by 1
    """
)

# %% [markdown]
# ## How many records each unified individual holds

# %%
show(
    """
    select record_count, count(*) as people
    from unified_individual group by 1 order by 1
    """
)
show(
    "select linked_by, count(*) as records from unified_link_individual group by 1 order by 2 desc"
)

# %% [markdown]
# ## The best customers, and the segments

# %%
show(
    """
    select unified_individual_id, first_name, last_name, order_count, round(total_spend, 2) as spend
    from customer_360 order by total_spend desc limit 10
    """
)
show("select segment_name, count(*) as members from segment_membership group by 1 order by 1")
