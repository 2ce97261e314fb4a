"""The Splink model: comparisons and blocking rules from cdp.yml, training, prediction.

Only Splink's public surface is used, so its DuckDB backend can be swapped for Spark.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from cdp.errors import CdpError
from cdp.identity.settings import ComparisonRule, IdentitySettings

# Documented default m / u per level, used when a workspace is too small to train on.
# Each list runs from the most to the least similar level (the null level is implied).
DEFAULT_PARAMS = {
    "exact": ([0.90, 0.10], [0.001, 0.999]),
    "fuzzy": ([0.80, 0.12, 0.08], [0.001, 0.01, 0.989]),
    "name": ([0.80, 0.06, 0.08, 0.03, 0.03], [0.002, 0.002, 0.006, 0.03, 0.96]),
    "date": ([0.88, 0.07, 0.05], [0.0003, 0.003, 0.9967]),
}


def _comparison(rule: ComparisonRule, trained: bool):
    # Term frequencies from a workspace too small to train on would be noise.
    c, tf = rule.column, rule.term_frequency and trained
    if rule.kind == "exact":
        levels = [cll.ExactMatchLevel(c, term_frequency_adjustments=tf)]
    elif rule.kind == "fuzzy":
        levels = [
            cll.ExactMatchLevel(c, term_frequency_adjustments=tf),
            cll.JaroWinklerLevel(c, 0.9),
        ]
    elif rule.kind == "name":
        levels = [
            cll.ExactMatchLevel(c, term_frequency_adjustments=tf),
            cll.ArrayIntersectLevel("first_name_variants", 1).configure(label_for_charts="nickname")
            if c == "first_name_key"
            else cll.JaroWinklerLevel(c, 0.97),
            cll.JaroWinklerLevel(c, 0.92),
            cll.JaroWinklerLevel(c, 0.8),
        ]
    else:  # date (as ISO text): exact, or one typo / transposition away
        levels = [
            cll.ExactMatchLevel(c),
            cll.DamerauLevenshteinLevel(c, 1),
        ]
    levels = [cll.NullLevel(c), *levels, cll.ElseLevel()]
    if not trained:
        m, u = DEFAULT_PARAMS[rule.kind]
        for level, mp, up in zip(levels[1:], m, u, strict=True):
            level.configure(m_probability=mp, u_probability=up)
    return cl.CustomComparison(comparison_levels=levels, output_column_name=c)


def splink_settings(settings: IdentitySettings, trained: bool = True) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[_comparison(r, trained) for r in settings.comparisons],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in settings.blocking_rules],
        retain_intermediate_calculation_columns=True,  # per-comparison mw_ columns: the evidence
        retain_matching_columns=False,
        additional_columns_to_retain=["first_name_variants"],
        probability_two_random_records_match=0.0001,
    )


def new_linker(db: DuckDBAPI, records: pa.Table, settings) -> Linker:
    return Linker(db.register(records), settings, log_level=logging.WARNING)


def check_blocking(
    con: duckdb.DuckDBPyConnection, table: str, settings: IdentitySettings
) -> dict[str, int]:
    """Count each rule's comparisons before predicting; refuse one that would explode.

    For equality rules the count is exact and cheap: the sum over blocks of n(n-1)/2.
    """
    counts = {}
    records = con.execute(f"select count(*) from {table}").fetchone()[0]
    limit = settings.comparison_limit(records)
    for rule in settings.blocking_rules:
        cols = ", ".join(rule)
        not_null = " and ".join(f"{c} is not null" for c in rule)
        n = con.execute(
            f"select coalesce(sum(n * (n - 1) / 2), 0)::bigint from "
            f"(select count(*) as n from {table} where {not_null} group by {cols})"
        ).fetchone()[0]
        counts[" & ".join(rule)] = int(n)
        if n > limit:
            largest = con.execute(
                f"select count(*) as n from {table} where {not_null} group by {cols} order by n desc limit 1"
            ).fetchone()[0]
            raise CdpError(
                f"blocking rule [{', '.join(rule)}] would generate {n:,} comparisons, over the limit of "
                f"{limit:,} (identity.max_comparisons_per_record x records, or "
                f"identity.max_comparisons_per_rule); its largest "
                f"block holds {largest:,} records sharing one value. Use a more selective rule in "
                "cdp.yml (identity.blocking_rules), or clean the shared default value at the source"
            )
    return counts


def train_model(db: DuckDBAPI, records: pa.Table, settings: IdentitySettings, path: Path) -> dict:
    """EM training with u from random sampling; the model is saved as reviewable JSON."""
    linker = new_linker(db, records, splink_settings(settings, trained=True))
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.training_max_pairs, seed=settings.seed
    )
    # Each EM pass estimates every comparison but the ones it blocks on; three passes
    # cover them all.
    for rule in (["first_name_key", "last_name_key"], ["birth_date"], ["email_key"]):
        cols = {r.column for r in settings.comparisons}
        if set(rule) & cols:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    model = linker.misc.save_model_to_json(str(path), overwrite=True)
    return model
