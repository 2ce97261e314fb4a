"""The Splink model: comparisons and blocking rules from cdp.yml, training, prediction.

Only Splink's public surface is used, so its DuckDB backend can be swapped for Spark.
Custom comparison levels are written in DuckDB's SQL (base_dialect_str), which Splink
translates for Spark; the saved model is always in DuckDB's SQL (model_in_dialect), so
one model file serves both engines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pyarrow as pa
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

from cdp.identity.blocking import pair_count
from cdp.identity.logs import splink_log_level
from cdp.identity.settings import ComparisonRule, IdentitySettings
from cdp.io.atomic import atomic_path

# Documented default m / u per level, used when a workspace is too small to train on.
# Each list runs from the most to the least similar level (the null level is implied).
DEFAULT_PARAMS = {
    "exact": ([0.90, 0.10], [0.001, 0.999]),
    "email": ([0.85, 0.03, 0.12], [0.0005, 0.0005, 0.999]),
    "address": ([0.70, 0.08, 0.07, 0.03, 0.12], [0.0002, 0.0003, 0.005, 0.0005, 0.9940]),
    "fuzzy": ([0.80, 0.12, 0.08], [0.001, 0.01, 0.989]),
    "name": ([0.80, 0.06, 0.08, 0.03, 0.03], [0.002, 0.002, 0.006, 0.03, 0.96]),
    "date": ([0.88, 0.07, 0.05], [0.0003, 0.003, 0.9967]),
    "identifier": ([0.90, 0.05, 0.05], [0.00001, 0.0001, 0.99989]),
}
# m / u of the "first and last name swapped" level of both name comparisons.
SWAPPED_PARAMS = (0.01, 0.0001)


def _nickname_level():
    # One name is in the other's list of related names: a direct relation only.
    return cll.CustomLevel(
        "list_contains(first_name_variants_l, first_name_key_r) "
        "or list_contains(first_name_variants_r, first_name_key_l)",
        label_for_charts="nickname",
        base_dialect_str="duckdb",
    )


def _swapped_level(c: str) -> list:
    # First and last name written the wrong way round: Hassall Jacob for Jacob Hassall.
    if c not in ("first_name_key", "last_name_key"):
        return []
    return [
        cll.ColumnsReversedLevel("first_name_key", "last_name_key").configure(
            label_for_charts="first and last name swapped"
        )
    ]


def _email_levels(c: str, tf: bool) -> list:
    user = lambda side: f"split_part({c}_{side}, '@', 1)"  # noqa: E731
    return [
        cll.ExactMatchLevel(c, term_frequency_adjustments=tf),
        cll.CustomLevel(
            f"{user('l')} = {user('r')}",
            label_for_charts="same user, other domain",
            base_dialect_str="duckdb",
        ),
    ]


class _EngineLevel(cll.CustomLevel):
    """A custom level in DuckDB's SQL whose Spark SQL differs only in function names that
    sqlglot does not know: Splink's Spark jar calls Jaro-Winkler `jaro_winkler`."""

    SPARK_NAMES: ClassVar[dict[str, str]] = {"jaro_winkler_similarity(": "jaro_winkler("}

    def __init__(self, sql_condition: str, label_for_charts: str):
        super().__init__(sql_condition, label_for_charts=label_for_charts)

    def create_sql(self, sql_dialect) -> str:
        if sql_dialect.sql_dialect_str != "spark":
            return self.sql_condition
        sql = self.sql_condition
        for duckdb_name, spark_name in self.SPARK_NAMES.items():
            sql = sql.replace(duckdb_name, spark_name)
        return sql


def _address_levels(c: str, postal: str, house: str, city: str) -> list:
    # Street, postal code and city are one comparison: counted apart, a shared home would
    # be counted several times as evidence, and household members would look like one
    # person. "1 Oak St" and "2 Oak St" are a letter apart but two homes: a similar street
    # counts only when the house numbers do not differ, and only in the same area: the
    # same postal code, one typo away from it, or the same city.
    same_house = f"({house}_l is null or {house}_r is null or {house}_l = {house}_r)"
    same_area = (
        f"({postal}_l = {postal}_r or damerau_levenshtein({postal}_l, {postal}_r) <= 1 "
        f"or {city}_l = {city}_r)"
    )
    return [
        cll.And(cll.ExactMatchLevel(c), cll.ExactMatchLevel(postal)).configure(
            label_for_charts="same address"
        ),
        _EngineLevel(
            f"jaro_winkler_similarity({c}_l, {c}_r) >= 0.9 and {same_house} and {same_area}",
            label_for_charts="similar street, same area",
        ),
        cll.CustomLevel(
            f"{postal}_l = {postal}_r and ({c}_l is null or {c}_r is null)",
            label_for_charts="same postal code, street unknown",
            base_dialect_str="duckdb",
        ),
        cll.ExactMatchLevel(c).configure(label_for_charts="same street, other area"),
    ]


def _null_level(rule: ComparisonRule):
    if rule.kind != "address":
        return cll.NullLevel(rule.column)
    c, p = rule.column, rule.postal_column
    return cll.CustomLevel(
        f"not (({c}_l is not null and {c}_r is not null) or ({p}_l is not null and {p}_r is not null))",
        label_for_charts="null",
        base_dialect_str="duckdb",
    ).configure(is_null_level=True)


def _comparison(rule: ComparisonRule, trained: bool):
    # Term frequencies from a workspace too small to train on would be noise.
    c, tf = rule.column, rule.term_frequency and trained
    if rule.kind == "exact":
        levels = [cll.ExactMatchLevel(c, term_frequency_adjustments=tf)]
    elif rule.kind == "email":
        levels = _email_levels(c, tf)
    elif rule.kind == "address":
        levels = _address_levels(c, rule.postal_column, rule.house_column, rule.city_column)
    elif rule.kind == "fuzzy":
        levels = [
            cll.ExactMatchLevel(c, term_frequency_adjustments=tf),
            cll.JaroWinklerLevel(c, 0.9),
        ]
    elif rule.kind == "name":
        levels = [
            cll.ExactMatchLevel(c, term_frequency_adjustments=tf),
            *_swapped_level(c),
            _nickname_level() if c == "first_name_key" else cll.JaroWinklerLevel(c, 0.97),
            cll.JaroWinklerLevel(c, 0.92),
            cll.JaroWinklerLevel(c, 0.8),
        ]
    else:  # date (as ISO text) or identifier: exact, or one typo / transposition away
        levels = [
            cll.ExactMatchLevel(c),
            cll.DamerauLevenshteinLevel(c, 1),
        ]
    levels = [_null_level(rule), *levels, cll.ElseLevel()]
    if not trained:
        m, u = DEFAULT_PARAMS[rule.kind]
        if rule.kind == "name" and _swapped_level(c):
            m, u = [m[0], SWAPPED_PARAMS[0], *m[1:]], [u[0], SWAPPED_PARAMS[1], *u[1:]]
        for level, mp, up in zip(levels[1:], m, u, strict=True):
            level.configure(m_probability=mp, u_probability=up)
    return cl.CustomComparison(comparison_levels=levels, output_column_name=c)


def splink_settings(
    settings: IdentitySettings, trained: bool = True, blocking: list | None = None
) -> SettingsCreator:
    """`blocking`: this run's rules, with the values each leaves out (BlockingPlan)."""
    retain = ["first_name_variants"]
    for r in settings.comparisons:
        if r.kind == "address":
            retain += [r.house_column, r.city_column]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[_comparison(r, trained) for r in settings.comparisons],
        blocking_rules_to_generate_predictions=blocking
        if blocking is not None
        else [block_on(*r) for r in settings.blocking_rules],
        retain_intermediate_calculation_columns=True,  # per-comparison mw_ columns: the evidence
        retain_matching_columns=False,
        additional_columns_to_retain=retain,
        probability_two_random_records_match=0.0001,
    )


def new_linker(db, records: pa.Table, settings) -> Linker:
    return Linker(db.register(records), settings, log_level=splink_log_level())


MIN_EM_PAIRS = 100
EM_RULES = (("first_name_key", "last_name_key"), ("birth_date",), ("email_key",))


def estimate_m_by_em(linker: Linker, con, table: str, columns: set[str]) -> None:
    """Each EM pass estimates every comparison but the ones it blocks on; three passes
    cover them all. A pass on no compared column, or whose rule pairs (almost) no
    records, say on email in data with no emails, is skipped: EM cannot learn from it."""
    for rule in EM_RULES:
        if set(rule) & columns and pair_count(con, table, list(rule)) >= MIN_EM_PAIRS:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))


PRIOR_RULES = (
    ("email_key", "first_name_key"),
    ("first_name_key", "last_name_key", "birth_date"),
)

# A level the training data never showed for true matches keeps this m: a birth-date
# typo unseen in one workspace must not veto a match in the next.
M_FLOOR = 0.001


def training_sample(records: pa.Table, settings: IdentitySettings) -> pa.Table:
    """A uniform sample of records. Two records are both kept with the same chance whether
    they match or not, so the share of matches among blocked pairs, which EM estimates
    from, is unchanged; the pairs to score shrink with the square of the sample."""
    n, k = records.num_rows, settings.training_sample_records
    if n <= k:
        return records
    rng = np.random.default_rng(settings.seed)
    return records.take(pa.array(np.sort(rng.choice(n, size=k, replace=False))))


def floor_m(model: dict) -> dict:
    for comparison in model.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            m = level.get("m_probability")
            if not level.get("is_null_level") and m is not None and 0 <= m < M_FLOOR:
                level["m_probability"] = M_FLOOR
    return model


def model_in_dialect(model: dict, settings: IdentitySettings, dialect: str) -> dict:
    """A saved model with its SQL in `dialect` (duckdb or spark): the same comparisons,
    levels and trained parameters, each level's condition as Splink writes it for that
    engine. The shapes match (scoring.model_matches checks it before any use)."""
    if model.get("sql_dialect") == dialect:
        return model
    fresh = splink_settings(settings, trained=True).create_settings_dict(dialect)
    comparisons = []
    for saved, made in zip(model["comparisons"], fresh["comparisons"], strict=True):
        levels = [
            {**level, "sql_condition": made_level["sql_condition"]}
            for level, made_level in zip(
                saved["comparison_levels"], made["comparison_levels"], strict=True
            )
        ]
        comparisons.append({**saved, "comparison_levels": levels})
    return {
        **model,
        "sql_dialect": dialect,
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": fresh["blocking_rules_to_generate_predictions"],
    }


def train_model(db, records: pa.Table, settings: IdentitySettings, path: Path) -> dict:
    """EM training with u from random sampling, on a sample of the records at scale; the
    model is saved as reviewable JSON."""
    sample = training_sample(records, settings)
    linker = new_linker(db, sample, splink_settings(settings, trained=True))
    con = duckdb.connect()
    con.register("sample", sample)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.training_max_pairs, seed=settings.seed
    )
    # The prior (how likely two random records are one person) from pairs that surely
    # match, scaled by the share of true pairs those rules find: a uniform sample keeps it.
    cols = {c.column for c in settings.comparisons}
    rules = [
        r
        for r in PRIOR_RULES
        if set(r) <= cols | {"first_name_key"} and pair_count(con, "sample", list(r)) > 0
    ]
    if rules:
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*r) for r in rules], recall=settings.prior_rules_recall
        )
    estimate_m_by_em(linker, con, "sample", cols)
    # Saved in DuckDB's SQL whichever engine trained it: one file for both engines.
    model = model_in_dialect(floor_m(linker.misc.save_model_to_json()), settings, "duckdb")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(model, indent=2), encoding="utf-8")
    return model
