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
# # Sources and data quality
#
# What each source sent, what ingestion kept and set aside (and why), how full each field
# of the canonical objects is per source, and which values did not parse.
#
# Everything is read from the workspace's catalog, read-only and sandboxed to its lake
# (`cdp.catalog.connect_catalog`, the same as `cdp sql`): a notebook never blocks a run.
# Open it with `make notebooks`, or run it top to bottom:
# `CDP_WORKSPACE=data jupytext --to ipynb --execute notebooks/01_sources_and_quality.py`.

# %%
import altair as alt
import polars as pl
from helpers import q, show, tables, ws

print(f"workspace {ws.root}")

# %% [markdown]
# ## Rows per source: received = kept + quarantined
#
# `ingest_manifest` has one row per landed file with its row counts. No row is lost
# silently: every row received is either kept in `raw_<source>` or set aside in
# `quarantine_<source>` with a reason.

# %%
per_source = q(
    """
    select source_name, count(*) as files, sum(rows_in) as received,
        sum(rows_kept) as kept, sum(rows_quarantined) as quarantined
    from ingest_manifest group by 1 order by received desc
    """
)
assert (per_source["received"] == per_source["kept"] + per_source["quarantined"]).all()
per_source

# %%
stacked = per_source.unpivot(
    index="source_name", on=["kept", "quarantined"], variable_name="outcome", value_name="rows"
)
show(
    alt.Chart(stacked, title="Rows received per source")
    .mark_bar()
    .encode(
        y=alt.Y("source_name:N", sort="-x", title=None),
        x=alt.X("rows:Q", title="rows"),
        color=alt.Color("outcome:N", scale=alt.Scale(range=["#4c78a8", "#e45756"])),
        tooltip=["source_name", "outcome", "rows"],
    )
    .properties(width=520),
    "rows_per_source",
)

# %% [markdown]
# ## Quarantine: why rows were set aside
#
# One `quarantine_<source>` view per declared source (empty and typed when nothing was set
# aside), each row with its `_reason` and `_field`. The chart shows each source's
# quarantine rate by reason; a source with nothing quarantined shows no bar.

# %%
quarantine_views = sorted(t for t in tables() if t.startswith("quarantine_"))
reasons = q(
    " union all ".join(
        f"select '{t.removeprefix('quarantine_')}' as source_name, "
        f"coalesce(_reason, '(no reason)') as reason, count(*) as rows from {t} group by all"
        for t in quarantine_views
    )
)
reasons = (
    per_source.select("source_name", "received")
    .join(reasons, on="source_name", how="left")
    .with_columns(
        pl.col("reason").fill_null("(nothing quarantined)"),
        pl.col("rows").fill_null(0),
    )
    .with_columns(rate=pl.col("rows") / pl.col("received"))
)
reasons.filter(pl.col("rows") > 0).sort("rows", descending=True)

# %%
show(
    alt.Chart(reasons, title="Quarantine rate per source, by reason")
    .mark_bar()
    .encode(
        y=alt.Y("source_name:N", title=None),
        x=alt.X("sum(rate):Q", axis=alt.Axis(format="%"), title="share of rows received"),
        color=alt.Color("reason:N", legend=alt.Legend(orient="bottom", columns=1)),
        tooltip=["source_name", "reason", "rows", alt.Tooltip("rate:Q", format=".3%")],
    )
    .properties(width=520),
    "quarantine_reasons",
)

# %% [markdown]
# ## Field fill rates per source
#
# The share of rows of each canonical object where a field is filled, per source: a
# source that never sends birth dates, or an address field mapped to the wrong column,
# shows up as a pale cell. Load bookkeeping columns, and fields no source fills, are left
# out.

# %%
OBJECTS = [
    "individual",
    "contact_point_email",
    "contact_point_phone",
    "contact_point_address",
    "party_identification",
    "sales_order",
    "engagement_email",
    "service_case",
    "contact_point_consent",
]
BOOKKEEPING = {"source_name", "source_record_id", "ordinal", "updated_ts", "_load_id", "_row_number"}


def fill_rates(obj: str) -> pl.DataFrame:
    cols = [r[0] for r in q(f"describe {obj}").iter_rows() if r[0] not in BOOKKEEPING]
    counts = ", ".join(f'count("{c}") / count(*) as "{c}"' for c in cols)
    wide = q(f"select source_name, {counts} from {obj} group by 1")
    return wide.unpivot(index="source_name", variable_name="field", value_name="fill_rate").with_columns(
        field=pl.lit(obj + ".") + pl.col("field")
    )


available = tables()
fill = pl.concat([fill_rates(o) for o in OBJECTS if o in available])
# Fields no source fills (not mapped anywhere) are listed, not drawn.
mapped = fill.group_by("field").agg(pl.col("fill_rate").max().alias("best"))
print("filled by no source:", ", ".join(sorted(mapped.filter(pl.col("best") == 0)["field"])))
fill = fill.join(mapped.filter(pl.col("best") > 0), on="field", how="semi")
fill.group_by("field").agg(pl.col("fill_rate").min().alias("lowest")).sort("lowest").head(10)

# %%
base = alt.Chart(fill, title="Field fill rate per source").encode(
    x=alt.X("source_name:N", title=None, axis=alt.Axis(labelAngle=-30)),
    y=alt.Y("field:N", title=None, sort=None),
)
show(
    (
        base.mark_rect().encode(
            color=alt.Color("fill_rate:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="filled"),
            tooltip=["field", "source_name", alt.Tooltip("fill_rate:Q", format=".1%")],
        )
        + base.mark_text(fontSize=9).encode(
            text=alt.Text("fill_rate:Q", format=".0%"),
            color=alt.condition("datum.fill_rate > 0.6", alt.value("white"), alt.value("black")),
        )
    ).properties(width=75 * fill["source_name"].n_unique()),
    "field_fill_rates",
)

# %% [markdown]
# ## Values that did not parse, per field
#
# `ingest_data_quality` counts, per source, file and field, the values ingestion could not
# read as their declared type (stage `ingestion`) and those the mapping could not convert
# (stage `mapping`: date formats, value maps, phone numbers; dbt's `int_parse_failures`).
# Every source is listed; one without a failure shows a zero.

# %%
failures = q(
    """
    select source_name, stage, field, "check", sum(failures) as failures
    from ingest_data_quality group by all order by failures desc
    """
)
failures

# %%
per_field = (
    per_source.select("source_name")
    .join(
        failures.group_by("source_name", "field").agg(pl.col("failures").sum()),
        on="source_name",
        how="left",
    )
    .with_columns(pl.col("field").fill_null("(none)"), pl.col("failures").fill_null(0))
)
show(
    alt.Chart(per_field, title="Values that failed to parse, per source and field (0 = none)")
    .mark_bar()
    .encode(
        y=alt.Y("source_name:N", title=None),
        x=alt.X("sum(failures):Q", title="values", scale=alt.Scale(domainMin=0)),
        color=alt.Color("field:N", legend=alt.Legend(orient="bottom", columns=3)),
        tooltip=["source_name", "field", "failures"],
    )
    .properties(width=520),
    "parse_failures",
)

# %% [markdown]
# ## Raw against canonical: rows kept per source and object
#
# How many rows of each source's raw table reached each canonical object after
# deduplication to the latest version.

# %%
raw_counts = q(
    " union all ".join(
        f"select '{t.removeprefix('raw_')}' as source_name, count(*) as raw_rows from {t}"
        for t in sorted(t for t in available if t.startswith("raw_"))
    )
)
canonical_counts = q(
    " union all ".join(
        f"select source_name, '{o}' as object, count(*) as canonical_rows from {o} group by 1"
        for o in OBJECTS + ["sales_order_line", "engagement_web", "product"]
        if o in available
    )
)
raw_counts.join(canonical_counts, on="source_name", how="left").sort("source_name", "object")
