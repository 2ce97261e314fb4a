"""Score candidate pairs with Splink, then correct the scores of household pairs.

The scored pairs stay columnar (numpy) from Splink to the outputs: at a million people
they run into the millions, and Python objects per pair would cost gigabytes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI, Linker

from cdp.identity.blocking import BlockingPlan, plan_blocking
from cdp.identity.logs import splink_log_level
from cdp.identity.model import model_in_dialect, splink_settings, train_model
from cdp.identity.settings import IdentitySettings
from cdp.workspace import Workspace

# What Splink's DuckDB may hold in memory before it spills to disk; the rest of the
# stage (records, clustering, outputs) needs about as much again at a million people.
SPLINK_MEMORY = "1500MB"


@dataclass
class ScoredPairs:
    """Every pair Splink scored: record indexes (lo < hi), final probability, whether it
    was re-scored as a household pair, and its match weights."""

    n: int
    lo: np.ndarray
    hi: np.ndarray
    p: np.ndarray
    household: np.ndarray
    weight: np.ndarray
    mw: dict[str, np.ndarray]
    blocking: BlockingPlan = field(default_factory=BlockingPlan)
    warnings: list[str] = field(default_factory=list)
    household_share: float | None = None  # learnt share of household pairs that are one person

    def __post_init__(self) -> None:
        keys = self.lo * max(self.n, 1) + self.hi
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]

    @classmethod
    def empty(cls, n: int) -> ScoredPairs:
        none = np.array([], dtype=np.int64)
        return cls(n, none, none, np.array([]), np.array([], dtype=bool), np.array([]), {})

    @property
    def names(self) -> list[str]:
        return sorted(self.mw)

    @property
    def in_pair_order(self) -> np.ndarray:
        """The rows sorted by their records (lo, then hi)."""
        return self._order

    def rows(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Row of each pair (in either order) among the scored pairs, or -1."""
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        if not len(self._keys):
            return np.full(len(left), -1, dtype=np.int64)
        keys = np.minimum(left, right) * max(self.n, 1) + np.maximum(left, right)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return np.where(self._keys[at] == keys, self._order[at], -1)


def engine(ws: Workspace) -> str:
    """cdp.yml `engine` (CDP_ENGINE overrides it): duckdb or spark."""
    from cdp.config.settings import load_settings

    return load_settings(ws.settings_file).engine


def splink_db(ws: Workspace):
    """Splink's database: DuckDB in this process, or Spark (cdp.yml `engine: spark`).
    Everything else of identity resolution is the same on both."""
    work = ws.tmp_dir / "splink"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if engine(ws) == "spark":
        from splink.backends.spark import SparkAPI

        from cdp.spark.session import workspace_spark

        spark = workspace_spark(ws)
        # Splink writes its big intermediate tables as Parquet under the checkpoint folder.
        spark.sparkContext.setCheckpointDir(str(work / "checkpoints"))
        return SparkAPI(spark_session=spark, break_lineage_method="parquet")
    # Big intermediate tables go to Parquet on disk, and DuckDB spills beyond its limit.
    con = duckdb.connect(
        config={"memory_limit": SPLINK_MEMORY, "temp_directory": str(work / "spill")}
    )
    return DuckDBAPI(con, materialisation="parquet", materialisation_dir=str(work))


def model_matches(ws: Workspace, settings: IdentitySettings) -> bool:
    """The saved model has the comparisons and levels cdp.yml asks for."""
    try:
        model = json.loads(ws.identity_model_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False

    def shape(comparisons: list[dict]) -> list:
        return [
            (
                c.get("output_column_name"),
                [lv.get("sql_condition") for lv in c["comparison_levels"]],
            )
            for c in comparisons
        ]

    wanted = splink_settings(settings).create_settings_dict("duckdb")["comparisons"]
    return shape(model.get("comparisons", [])) == shape(wanted)


def splink_input(records: pa.Table, settings: IdentitySettings) -> pa.Table:
    """The columns Splink compares and blocks on, nothing more."""
    wanted = {"unique_id", "first_name_variants"}
    for c in settings.comparisons:
        if c.kind == "address":
            wanted |= {c.postal_column, c.house_column, c.city_column}
        wanted.add(c.column)
    for rule in settings.blocking_rules:
        wanted |= set(rule)
    return records.select([c for c in records.column_names if c in wanted])


def score_pairs(
    ws: Workspace,
    records: pa.Table,
    settings: IdentitySettings,
    tf: dict[str, pa.Table] | None = None,
    fresh: np.ndarray | None = None,
    caps: list[int] | None = None,
) -> ScoredPairs:
    """Plan the blocking, train if needed, predict every pair at or above the near-miss
    threshold. `tf`: term frequencies to use instead of these records' own (when they are
    part of a larger set, cdp.identity.incremental). `fresh`: a flag per record; only the
    pairs with a flagged record are scored (the others were scored by an earlier run).
    `caps`: each blocking rule's cap, set over the larger set (blocking.whole_caps)."""
    n = records.num_rows
    if n < 2:
        return ScoredPairs.empty(n)
    only_with = None
    if fresh is not None:
        only_with = "_fresh"
        records = records.append_column(only_with, pa.array(fresh, pa.bool_()))
    check_con = duckdb.connect(config={"memory_limit": "1GB"})
    check_con.register("records", records)
    plan = plan_blocking(check_con, "records", settings, only_with=only_with, caps=caps)
    check_con.close()
    table = splink_input(records, settings)
    if only_with:
        table = table.append_column(only_with, records.column(only_with))
    warnings = plan.warnings
    trained = ws.identity_model_file.exists() and model_matches(ws, settings)
    if not trained and n >= settings.min_training_records:
        train_model(splink_db(ws), table, settings, ws.identity_model_file)
        trained = True
    db = splink_db(ws)
    dialect = db.sql_dialect.sql_dialect_str
    if trained:
        saved = json.loads(ws.identity_model_file.read_text(encoding="utf-8"))
        model = model_in_dialect(saved, settings, dialect)
        # The saved model's comparisons, this run's blocking (what it leaves out varies).
        model["blocking_rules_to_generate_predictions"] = [
            r.create_blocking_rule_dict(dialect) for r in plan.rules
        ]
    else:
        warnings.append(
            f"only {n} person records: too few to train, so the documented default "
            "match parameters are used (see docs/identity.md)"
        )
        model = splink_settings(settings, trained=False, blocking=plan.rules)
    for column, flags in plan.skip_columns.items():
        table = table.append_column(column, pa.array(flags, pa.bool_()))
    linker = Linker(db.register(table), model, log_level=splink_log_level())
    for column, frequencies in (tf or {}).items():
        linker.table_management.register_term_frequency_lookup(db.register(frequencies), column)
    preds = linker.inference.predict(threshold_match_probability=settings.near_miss_threshold)
    scored = _prediction_table(preds, dialect)
    mw_cols = [c for c in scored.column_names if c.startswith("mw_")]
    uids = records.column("unique_id").combine_chunks()
    left = pc.index_in(scored["unique_id_l"], value_set=uids).to_numpy(zero_copy_only=False)
    right = pc.index_in(scored["unique_id_r"], value_set=uids).to_numpy(zero_copy_only=False)
    p, household, household_share = household_rescore(scored, settings)
    return ScoredPairs(
        n,
        np.minimum(left, right).astype(np.int64),
        np.maximum(left, right).astype(np.int64),
        p,
        household,
        scored["match_weight"].to_numpy(zero_copy_only=False),
        {c: scored[c].to_numpy(zero_copy_only=False) for c in mw_cols},
        plan,
        warnings,
        household_share,
    )


def _prediction_table(preds, dialect: str) -> pa.Table:
    """The scored pairs as Arrow: ids, probability, weight and each comparison's weight."""
    keep = ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]
    if dialect == "spark":
        df = preds.as_spark_dataframe()
        cols = keep + [c for c in df.columns if c.startswith("mw_")]
        return df.select(*cols).toArrow()
    rel = preds.as_duckdbpyrelation()
    cols = keep + [c for c in rel.columns if c.startswith("mw_")]
    return rel.select(", ".join(cols)).to_arrow_table()


def household_rescore(
    scored: pa.Table, settings: IdentitySettings
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Match probabilities with household pairs re-scored, which pairs those are, and the
    share of household pairs that are one person as learnt from the data.

    Fellegi-Sunter treats comparisons as independent, but one surname and one home are
    what a household shares: counted as evidence, a mother and daughter with one first
    name look like one person. When every household comparison agrees (a positive
    weight), the pair's weight is rebuilt from the household prior and the other
    comparisons only, and the lower of the two probabilities is kept.
    """
    p = scored["match_probability"].to_numpy(zero_copy_only=False)
    names = [c.column for c in settings.comparisons if f"mw_{c.column}" in scored.column_names]
    household = [c for c in settings.household_comparisons if c in names]
    if not household or len(p) == 0:
        return p, np.zeros(len(p), dtype=bool), None

    def weight(c: str) -> np.ndarray:
        w = np.nan_to_num(scored[f"mw_{c}"].to_numpy(zero_copy_only=False))
        if f"mw_tf_adj_{c}" in scored.column_names:
            w = w + np.nan_to_num(scored[f"mw_tf_adj_{c}"].to_numpy(zero_copy_only=False))
        return w

    shared = np.logical_and.reduce([weight(c) > 0 for c in household])
    not_personal = set(household) | set(settings.household_shared)
    personal = sum((weight(c) for c in names if c not in not_personal), np.zeros(len(p)))[shared]
    learnt = estimate_household_prior(personal)
    prior = learnt if settings.household_prior == "auto" else settings.household_prior
    rescored = 1 / (1 + np.exp2(-(np.log2(prior / (1 - prior)) + personal)))
    out = p.copy()
    out[shared] = np.minimum(p[shared], rescored)
    return out, shared, learnt


# The household prior is kept inside these bounds: with too few household pairs to
# learn from, neither "always one person" nor "never" is safe.
HOUSEHOLD_PRIOR_BOUNDS = (0.05, 0.95)


def estimate_household_prior(personal: np.ndarray, iterations: int = 200) -> float:
    """The share of household pairs that are one person, learnt from the data.

    `personal` holds each household pair's log2 Bayes factor from its personal
    comparisons (first name, birth date, email, phone). With those fixed, the share is
    the mixing proportion of a two-class model, found by EM: the mean posterior.
    Data where a shared home and surname nearly always mean one person (repeated
    records, no families) get a high prior; data full of families get a low one.
    """
    low, high = HOUSEHOLD_PRIOR_BOUNDS
    if len(personal) < 50:
        return 0.5
    bf = np.exp2(np.clip(personal, -60, 60))
    pi = 0.5
    for _ in range(iterations):
        new = float(np.mean(pi * bf / (pi * bf + 1 - pi)))
        new = min(max(new, low), high)
        if abs(new - pi) < 1e-6:
            break
        pi = new
    return pi
