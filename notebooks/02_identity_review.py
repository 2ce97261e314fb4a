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
# # Identity review
#
# How records became unified individuals (docs/identity.md): the size of the clusters, the
# evidence Splink weighed for each comparison, Splink-style waterfalls for sample links,
# the accuracy against the generator's ground truth (when the workspace has one), and the
# blocking values large enough to be left out of their rule.
#
# Read-only over the catalog, like every notebook here (`make notebooks`).

# %%
import altair as alt
import polars as pl
from helpers import q, show, ws

from cdp.config.settings import load_settings
from cdp.identity.settings import IdentitySettings

identity = IdentitySettings.from_dict(load_settings(ws.settings_file).identity)
q(
    """
    select count(*) as unified_individuals, sum(person_records) as person_records,
        max(person_records) as largest_cluster,
        count(*) filter (where person_records = 1) as singletons
    from identity_clusters
    """
)

# %% [markdown]
# ## Cluster sizes
#
# Person records per unified individual. A long tail is the first sign of over-merging:
# `identity.max_cluster_size` (here shown as a rule) caps it.

# %%
sizes = q(
    "select person_records, count(*) as unified_individuals from identity_clusters group by 1 order by 1"
)
show(
    alt.layer(
        alt.Chart(sizes)
        .mark_bar()
        .encode(
            x=alt.X("person_records:O", title="person records in the unified individual"),
            y=alt.Y("unified_individuals:Q", title="unified individuals"),
            tooltip=["person_records", "unified_individuals"],
        ),
        alt.Chart(sizes)
        .mark_text(dy=-6, fontSize=10)
        .encode(x="person_records:O", y="unified_individuals:Q", text="unified_individuals:Q"),
    ).properties(title=f"Cluster sizes (max_cluster_size {identity.max_cluster_size})", width=480),
    "cluster_sizes",
)

# %% [markdown]
# ## What each comparison said
#
# `identity_edges` keeps, for every pair that joined a cluster, Splink's match weight per
# comparison (`mw_<comparison>`, log2 of the Bayes factor; the `mw_tf_adj_` columns are the
# term-frequency adjustments). Positive: the fields agreed and that is evidence for one
# person; negative: they disagreed. Zero: a field missing on one side.

# %%
edge_columns = [r[0] for r in q("describe identity_edges").iter_rows()]
weights = [c for c in edge_columns if c.startswith("mw_") and not c.startswith("mw_tf_adj_")]
histogram = q(
    f"""
    select replace(comparison, 'mw_', '') as comparison, round(weight) as weight, count(*) as pairs
    from (unpivot (select {", ".join(weights)} from identity_edges)
          on {", ".join(weights)} into name comparison value weight)
    where weight is not null
    group by all order by all
    """
)
show(
    alt.Chart(histogram)
    .mark_bar()
    .encode(
        x=alt.X("weight:Q", title="match weight (rounded)"),
        y=alt.Y("pairs:Q", title="pairs"),
        color=alt.Color(
            "evidence:N",
            scale=alt.Scale(domain=["for", "none", "against"], range=["#2e8b57", "#9aa5b8", "#c0392b"]),
            title=None,
        ),
        tooltip=["comparison", "weight", "pairs"],
    )
    .transform_calculate(evidence="datum.weight > 0 ? 'for' : (datum.weight < 0 ? 'against' : 'none')")
    .properties(width=210, height=120)
    .facet(facet=alt.Facet("comparison:N", title=None), columns=3)
    .resolve_scale(y="independent")
    .properties(title="Match weight per comparison, over the pairs that joined a cluster"),
    "match_weights",
)

# %% [markdown]
# ## Waterfalls of sample links
#
# As Splink draws them: start from the prior (the chance that two records compared are one
# person), then add each comparison's weight; the end is the pair's match weight and
# probability. Samples: the probabilistic links of the three largest clusters.

# %%
samples = q(
    f"""
    with ranked as (
        select e.*, row_number() over (
            partition by e.unified_individual_id order by e.match_probability desc, e.unique_id_l, e.unique_id_r
        ) as n
        from identity_edges e join identity_clusters c using (unified_individual_id)
        where e.stage = 'probabilistic' and e.match_weight is not null
        qualify n = 1
        order by c.person_records desc, e.unified_individual_id
        limit 3
    )
    select unique_id_l || ' ⟷ ' || unique_id_r as pair, match_weight, match_probability,
        {", ".join(c for c in edge_columns if c.startswith("mw_"))}
    from ranked
    """
)


def waterfall(row: dict) -> pl.DataFrame:
    parts = {k[3:]: v for k, v in row.items() if k.startswith("mw_") and v}
    steps = [("prior", row["match_weight"] - sum(parts.values()))] + sorted(parts.items(), key=lambda kv: -abs(kv[1]))
    out, running = [], 0.0
    for order, (name, weight) in enumerate(steps):
        out.append({"pair": row["pair"], "order": order, "step": name, "start": running, "end": running + weight, "weight": weight})
        running += weight
    out.append({"pair": row["pair"], "order": len(steps), "step": "final", "start": 0.0, "end": running, "weight": running})
    return pl.DataFrame(out)


steps = pl.concat([waterfall(r) for r in samples.iter_rows(named=True)])
samples.select("pair", "match_weight", "match_probability")

# %%
show(
    alt.Chart(steps)
    .mark_bar()
    .encode(
        x=alt.X("step:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("start:Q", title="cumulative match weight"),
        y2="end:Q",
        color=alt.Color(
            "kind:N",
            scale=alt.Scale(domain=["for", "against", "total"], range=["#2e8b57", "#c0392b", "#4c78a8"]),
            title=None,
        ),
        tooltip=["step", alt.Tooltip("weight:Q", format="+.2f"), alt.Tooltip("end:Q", format=".2f")],
    )
    .transform_calculate(kind="datum.step == 'final' ? 'total' : (datum.weight >= 0 ? 'for' : 'against')")
    .properties(width=330, height=200)
    .facet(facet=alt.Facet("pair:N", title=None), columns=1)
    .resolve_scale(x="independent")
    .properties(title="Waterfalls of sample links (Splink match weights)"),
    "waterfalls",
)

# %% [markdown]
# ## Accuracy against the ground truth
#
# `cdp generate` writes who is who to `ground_truth/records.parquet` (outside the lake, so
# it is read here directly, not through the catalog). Pairwise precision: of the pairs of
# records placed in one unified individual, the share that are one true person; recall: of
# the true pairs, the share placed together (`cdp.identity.evaluate`, as `make bench`).

# %%
truth_file = ws.ground_truth_dir / "records.parquet"
if truth_file.exists():
    import pyarrow.parquet as pq

    from cdp.identity.evaluate import pairwise_scores

    links = q("select source_name, source_record_id, unified_individual_id from unified_link_individual where record_kind = 'person'")
    scores = pairwise_scores(links.to_arrow(), pq.read_table(truth_file))
    accuracy = pl.DataFrame(
        {"measure": ["precision", "recall", "F1"], "value": [scores["precision"], scores["recall"], scores["f1"]]}
    )
    print({k: scores[k] for k in ("tp", "fp", "fn", "clusters", "largest_cluster", "true_largest_cluster")})
    chart = show(
        alt.layer(
            alt.Chart(accuracy).mark_bar().encode(
                y=alt.Y("measure:N", sort=None, title=None),
                x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), title="pairwise, against the ground truth"),
            ),
            alt.Chart(accuracy).mark_text(align="left", dx=4).encode(
                y=alt.Y("measure:N", sort=None), x="value:Q", text=alt.Text("value:Q", format=".4f")
            ),
        ).properties(title="Identity resolution accuracy", width=480),
        "accuracy",
    )
else:
    chart = print(f"no ground truth in {ws.ground_truth_dir}: nothing to score against")
chart

# %% [markdown]
# ## Blocking: the largest blocks of each rule
#
# Splink only compares pairs that agree on one blocking rule. A value shared by more than
# `identity.max_block_records` records is left out of that rule (docs/identity.md); the
# run's Dagster metadata counts them, never naming the values. Here they are recomputed
# from `int_person_records_prepared`, with their values: the largest blocks of each rule,
# and the cap as a rule.

# %%
blocks = pl.concat(
    [
        q(
            f"""
            select '{" & ".join(rule)}' as rule, concat_ws(' | ', {", ".join(f"cast({c} as varchar)" for c in rule)}) as value,
                count(*) as records
            from int_person_records_prepared
            where {" and ".join(f"{c} is not null" for c in rule)}
            group by all order by records desc, value limit 5
            """
        )
        for rule in identity.blocking_rules
    ]
)
left_out = blocks.filter(pl.col("records") > identity.max_block_records)
print(f"values left out of their rule (over {identity.max_block_records:,} records): {left_out.height}")
left_out

# %%
show(
    alt.layer(
        alt.Chart(blocks)
        .mark_tick(thickness=2, size=14)
        .encode(
            y=alt.Y("rule:N", title=None),
            x=alt.X(
                "records:Q",
                scale=alt.Scale(type="log", domain=[1, max(identity.max_block_records * 2, blocks["records"].max())]),
                title="records in the block (log scale)",
            ),
            color=alt.condition(f"datum.records > {identity.max_block_records}", alt.value("#c0392b"), alt.value("#4c78a8")),
            tooltip=["rule", "value", "records"],
        ),
        alt.Chart(pl.DataFrame({"cap": [identity.max_block_records]})).mark_rule(strokeDash=[4, 4]).encode(x="cap:Q"),
    ).properties(title="The five largest blocks of each blocking rule, and the cap", width=480),
    "blocking_sizes",
)
