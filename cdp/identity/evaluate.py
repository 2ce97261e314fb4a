"""Score clusters against ground truth, pairwise, without listing pairs.

Pairs placed together = sum over predicted clusters of C(n, 2); true pairs likewise over
true persons; pairs both = sum over (predicted cluster, true person) cells of C(n, 2).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


def pairwise_scores(predicted: pa.Table, truth: pa.Table) -> dict:
    """`predicted`: source_name, source_record_id, unified_individual_id (persons only).
    `truth`: source_name, source_record_id, person_id. Scored on records in both."""
    con = duckdb.connect()
    con.register("p", predicted)
    con.register("t", truth)
    row = con.execute(
        """
        with j as (
            select p.unified_individual_id as c, t.person_id as g
            from p join t using (source_name, source_record_id)
        ),
        cells as (select count(*) as n from j group by c, g),
        pc as (select count(*) as n from j group by c),
        tc as (select count(*) as n from j group by g)
        select
            (select coalesce(sum(n * (n - 1) / 2), 0) from cells),
            (select coalesce(sum(n * (n - 1) / 2), 0) from pc),
            (select coalesce(sum(n * (n - 1) / 2), 0) from tc),
            (select max(n) from pc),
            (select max(n) from tc),
            (select count(*) from pc)
        """
    ).fetchone()
    tp, pred_pairs, true_pairs, largest, true_largest, clusters = (int(x or 0) for x in row)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": pred_pairs - tp,
        "fn": true_pairs - tp,
        "clusters": clusters,
        "largest_cluster": largest,
        "true_largest_cluster": true_largest,
    }


def anonymous_accuracy(links: pa.Table, records_truth: pa.Table, cookies_truth: pa.Table) -> dict:
    """Share of logged-in cookies placed with a person record of their true person."""
    con = duckdb.connect()
    con.register("l", links)
    con.register("rt", records_truth)
    con.register("ct", cookies_truth)
    total, right = con.execute(
        """
        with cookie as (
            select l.source_record_id as anonymous_id, l.unified_individual_id
            from l where l.source_name = 'anonymous_visitor'
        ),
        person_of_cluster as (
            select distinct l.unified_individual_id, rt.person_id
            from l join rt using (source_name, source_record_id)
        )
        select
            (select count(*) from ct where logged_in),
            (select count(distinct ct.anonymous_id) from ct
             join cookie using (anonymous_id)
             join person_of_cluster pc on pc.unified_individual_id = cookie.unified_individual_id
                 and pc.person_id = ct.person_id
             where ct.logged_in)
        """
    ).fetchone()
    return {
        "logged_in": int(total),
        "linked_right": int(right),
        "accuracy": right / total if total else 1.0,
    }
