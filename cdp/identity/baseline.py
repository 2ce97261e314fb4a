"""Plain Splink, as a user would set it up from its documentation, for comparison.

Standard comparisons from `splink.comparison_library`, the same blocking rules as the
product, EM training with u from random sampling, and connected components at each
threshold. No deterministic stage, no guards, no nicknames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from cdp.identity.logs import splink_log_level
from cdp.identity.model import estimate_m_by_em

THRESHOLDS = (0.9, 0.99, 0.999)


@dataclass
class BaselineResult:
    clusters: dict[float, pa.Table] = field(default_factory=dict)  # unique_id, cluster_id
    seconds: float = 0.0
    predict_seconds: float = 0.0


def baseline_settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("first_name_key").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name_key").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.EmailComparison("email_key"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postal_code"),
            cl.JaroWinklerAtThresholds("address_line1_key"),
            cl.DamerauLevenshteinAtThresholds("national_id", [1]),
            cl.ExactMatch("city_key").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name_key", "last_name_key"),
            block_on("email_key"),
            block_on("phone"),
            block_on("last_name_key", "birth_date"),
            block_on("address_line1_key", "postal_code"),
            block_on("birth_date", "postal_code"),
            block_on("national_id"),
            block_on("birth_date", "address_line1_key"),
            block_on("first_name_key", "postal_code"),
            block_on("last_name_key", "postal_code"),
            block_on("first_name_key", "address_line1_key"),
        ],
    )


def run_baseline(
    records: pa.Table, work_dir: str, thresholds=THRESHOLDS, seed: int = 42
) -> BaselineResult:
    started = time.perf_counter()
    db = DuckDBAPI(duckdb.connect(), materialisation="parquet", materialisation_dir=work_dir)
    linker = Linker(
        db.register(
            records.select(
                [
                    "unique_id",
                    "first_name_key",
                    "last_name_key",
                    "birth_date",
                    "email_key",
                    "phone",
                    "postal_code",
                    "address_line1_key",
                    "national_id",
                    "city_key",
                ]
            )
        ),
        baseline_settings(),
        log_level=splink_log_level(),
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=3e6, seed=seed)
    con = duckdb.connect()
    con.register("records", records)
    estimate_m_by_em(linker, con, "records", set(records.column_names))
    t = time.perf_counter()
    preds = linker.inference.predict(threshold_match_probability=min(thresholds))
    result = BaselineResult(predict_seconds=time.perf_counter() - t)
    for threshold in thresholds:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(preds, threshold)
        result.clusters[threshold] = (
            clusters.as_duckdbpyrelation().select("unique_id, cluster_id").to_arrow_table()
        )
    result.seconds = time.perf_counter() - started
    return result
