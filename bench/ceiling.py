"""How much recall the data allows: a generous oracle that knows who is who.

Every pair of one person's records that agree on at least two of first name, surname,
birth date, email, phone, postal code and street is linked, and the links are closed
over. Agreement is generous: names and streets at Jaro-Winkler 0.88 or better or
nickname-canonical equal, birth dates one edit apart; first and last name alone count,
though between people they are ambiguous. What this oracle cannot link, no matcher using these fields
can link without also merging strangers.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.identity.prepare import build_records, connect_inputs

FIELDS = (
    "first_name_canon",
    "last_name_key",
    "birth_date",
    "email_key",
    "phone",
    "postal_code",
    "address_line1_key",
)


def recall_ceiling(ws) -> float:
    records = build_records(connect_inputs(ws)).select(
        ["unique_id", "source_name", "source_record_id", *FIELDS]
    )
    con = duckdb.connect()
    con.register("r", records)
    con.register("t", pq.read_table(ws.ground_truth_dir / "records.parquet"))
    con.execute(
        "create table j as select row_number() over (order by unique_id) - 1 as i, r.*, t.person_id as g "
        "from r join t using (source_name, source_record_id)"
    )
    fuzzy = {
        "first_name_canon": "a.first_name_canon = b.first_name_canon "
        "or jaro_winkler_similarity(a.first_name_canon, b.first_name_canon) >= 0.88",
        "last_name_key": "jaro_winkler_similarity(a.last_name_key, b.last_name_key) >= 0.88",
        "birth_date": "damerau_levenshtein(a.birth_date, b.birth_date) <= 1",
        "address_line1_key": "jaro_winkler_similarity(a.address_line1_key, b.address_line1_key) >= 0.88",
    }
    agree = " + ".join(f"coalesce(({fuzzy.get(f, f'a.{f} = b.{f}')})::int, 0)" for f in FIELDS)
    pairs = con.execute(
        f"select a.i, b.i from j a join j b on a.g = b.g and a.i < b.i where {agree} >= 2"
    ).fetchnumpy()
    n = con.execute("select count(*) from j").fetchall()[0][0]
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs["i"].tolist(), pairs["i_1"].tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    con.register("c", pa.table({"i": np.arange(n), "c": [find(i) for i in range(n)]}))
    linked, true = con.execute(
        "select (select sum(k * (k - 1) / 2) from (select count(*) k from j join c using (i) group by g, c)),"
        " (select sum(k * (k - 1) / 2) from (select count(*) k from j group by g))"
    ).fetchall()[0]
    return float(linked) / float(true) if true else 1.0
