# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Customers and segments
#
# The insights of `customer_360` (docs/insights.md): the RFM grid, how lifetime value is
# spread, how the segments overlap, who is at risk of churning, and which email campaigns
# earned revenue. Amounts are in the workspace's reporting currency.
#
# Read-only over the catalog, like every notebook here (`make notebooks`).

# %%
import altair as alt
import polars as pl
from helpers import q, show

q(
    """
    select count(*) as customers, count(*) filter (where order_count > 0) as buyers,
        sum(lifetime_value) as revenue, any_value(reporting_currency) as currency,
        any_value(insights_as_of_ts) as as_of
    from customer_360
    """
)

# %% [markdown]
# ## The RFM grid
#
# Recency against frequency score (quintiles, 5 best; docs/insights.md), for customers with
# at least one order: each cell the number of customers, coloured by their average lifetime
# value. Champions sit top right; the bottom right (bought often, not lately) is who to
# win back.

# %%
rfm = q(
    """
    select r_score, f_score, count(*) as customers, avg(lifetime_value) as average_ltv,
        mode(rfm_segment) as segment
    from customer_360 where r_score is not null group by all order by all
    """
)
base = alt.Chart(rfm, title="RFM grid: customers per recency and frequency score").encode(
    x=alt.X("r_score:O", title="recency score (5 = most recent)"),
    y=alt.Y("f_score:O", sort="descending", title="frequency score (5 = most often)"),
)
show(
    (
        base.mark_rect().encode(
            color=alt.Color("average_ltv:Q", scale=alt.Scale(scheme="greens"), title="average LTV"),
            tooltip=["r_score", "f_score", "customers", alt.Tooltip("average_ltv:Q", format=",.2f"), "segment"],
        )
        + base.mark_text(fontSize=13).encode(text="customers:Q")
    ).properties(width=360, height=300),
    "rfm_grid",
)

# %%
q(
    """
    select rfm_segment, count(*) as customers, round(sum(lifetime_value), 2) as revenue,
        round(avg(days_since_last_order)) as avg_days_since_last_order
    from customer_360 where rfm_segment is not null group by 1 order by revenue desc
    """
)

# %% [markdown]
# ## Lifetime value
#
# Buyers per lifetime value, in bins of equal width on a log scale (a tenth of a decade),
# binned in SQL so that any number of customers draws in a moment. The table below says how
# concentrated revenue is: the share earned by the top 1%, 10% and 20% of buyers.

# %%
ltv = q(
    """
    select power(10, floor(log10(lifetime_value) * 10) / 10) as ltv_from,
        power(10, (floor(log10(lifetime_value) * 10) + 1) / 10) as ltv_to,
        count(*) as buyers
    from customer_360 where lifetime_value > 0 group by all order by 1
    """
)
show(
    alt.Chart(ltv, title="Lifetime value of buyers")
    .mark_bar(stroke="white", strokeWidth=0.5)
    .encode(
        x=alt.X("ltv_from:Q", scale=alt.Scale(type="log"), title="lifetime value (log scale)"),
        x2="ltv_to:Q",
        y=alt.Y("buyers:Q", title="buyers"),
        y2=alt.datum(0),
        tooltip=[alt.Tooltip("ltv_from:Q", format=",.0f"), alt.Tooltip("ltv_to:Q", format=",.0f"), "buyers"],
    )
    .properties(width=520),
    "ltv_distribution",
)

# %%
q(
    """
    with ranked as (
        select lifetime_value, percent_rank() over (order by lifetime_value desc) as top
        from customer_360 where lifetime_value > 0
    )
    select round(100 * sum(lifetime_value) filter (where top < 0.01) / sum(lifetime_value), 1) as top_1pct_share,
        round(100 * sum(lifetime_value) filter (where top < 0.10) / sum(lifetime_value), 1) as top_10pct_share,
        round(100 * sum(lifetime_value) filter (where top < 0.20) / sum(lifetime_value), 1) as top_20pct_share
    from ranked
    """
)

# %% [markdown]
# ## How segments overlap
#
# Members two segments share (`segment_membership`, the latest run); the diagonal is each
# segment's size. A segment that is mostly inside another may not need its own campaign.

# %%
overlaps = q(
    """
    select a.segment_name as segment, b.segment_name as other, count(*) as members
    from segment_membership a join segment_membership b using (unified_individual_id)
    group by all order by all
    """
)
sizes = overlaps.filter(pl.col("segment") == pl.col("other")).select("segment", size="members")
overlaps = overlaps.join(sizes, on="segment").with_columns(share=pl.col("members") / pl.col("size"))
base = alt.Chart(overlaps, title="Segment overlaps: members in both (share of the row's segment)").encode(
    x=alt.X("other:N", title=None, axis=alt.Axis(labelAngle=-30)),
    y=alt.Y("segment:N", title=None),
)
show(
    (
        base.mark_rect().encode(
            color=alt.Color("share:Q", scale=alt.Scale(scheme="purples", domain=[0, 1]), title="share"),
            tooltip=["segment", "other", "members", alt.Tooltip("share:Q", format=".0%")],
        )
        + base.mark_text(fontSize=12).encode(
            text="members:Q",
            color=alt.condition("datum.share > 0.6", alt.value("white"), alt.value("black")),
        )
    ).properties(width=110 * sizes.height, height=50 * sizes.height),
    "segment_overlaps",
)

# %% [markdown]
# ## Churn risk
#
# `churn_risk` (0-100: recency against the customer's usual gap, falling engagement, open
# service cases) for customers with an order, in bins of 5, coloured by band (`high` from
# 60, `medium` from 30). The table gives each band's revenue at stake.

# %%
churn = q(
    """
    select floor(churn_risk / 5) * 5 as risk, churn_risk_band as band, count(*) as customers
    from customer_360 where churn_risk is not null group by all order by all
    """
)
show(
    alt.Chart(churn, title="Churn risk of customers with an order")
    .mark_bar()
    .encode(
        x=alt.X("risk:Q", bin=alt.Bin(step=5, extent=[0, 105]), title="churn risk"),
        y=alt.Y("customers:Q", title="customers"),
        color=alt.Color(
            "band:N",
            scale=alt.Scale(domain=["low", "medium", "high"], range=["#2e8b57", "#e0a030", "#c0392b"]),
        ),
        tooltip=["risk", "band", "customers"],
    )
    .properties(width=520),
    "churn_risk",
)

# %%
q(
    """
    select churn_risk_band, count(*) as customers, round(sum(lifetime_value), 2) as lifetime_value,
        round(avg(churn_recency_points), 1) as recency_points,
        round(avg(churn_engagement_points), 1) as engagement_points,
        round(avg(churn_case_points), 1) as case_points
    from customer_360 where churn_risk_band is not null group by 1 order by 2 desc
    """
)

# %% [markdown]
# ## Campaign attribution
#
# Last click within `insights.attribution_window_days` (`campaign_attribution`): the revenue
# each email campaign earned, with its sends and clicks. A campaign many clicked that
# earned nothing is worth a look.

# %%
campaigns = q(
    """
    select campaign, sends, clicks, clickers, attributed_orders, attributed_revenue,
        round(attributed_revenue / nullif(clicks, 0), 2) as revenue_per_click
    from campaign_attribution order by attributed_revenue desc, campaign
    """
)
campaigns

# %%
show(
    alt.layer(
        alt.Chart(campaigns)
        .mark_bar(color="#4c78a8")
        .encode(
            y=alt.Y("campaign:N", sort="-x", title=None),
            x=alt.X("attributed_revenue:Q", title="attributed revenue"),
            tooltip=["campaign", "sends", "clicks", "attributed_orders", "attributed_revenue"],
        ),
        alt.Chart(campaigns)
        .mark_text(align="left", dx=4, fontSize=10)
        .encode(
            y=alt.Y("campaign:N", sort="-x"),
            x="attributed_revenue:Q",
            text=alt.Text("label:N"),
        )
        .transform_calculate(label="datum.attributed_orders + ' orders, ' + datum.clicks + ' clicks'"),
    ).properties(title="Revenue attributed to email campaigns (last click)", width=440),
    "campaign_attribution",
)
