"""The scale run of `make bench`: `cdp run` end to end as a user runs it, then the
runs that follow it, then lookups.

- run: `cdp run` on the freshly generated workspace, every stage included; the time per
  stage comes from Dagster's step statistics of that run;
- rerun: `cdp run` again with no new file (the run plan should find nothing to do);
- increment: `cdp generate --append` adds 1% new people as new landing files, then
  `cdp run`; every record of the earlier run must keep its unified id;
- edits: 1% of the CRM contacts land again in a new file with another street (people
  who moved, as a nightly CRM delta sends them), then `cdp run`;
- profile: the whole `cdp profile <email>` command, and p50/p99 in process over 1,000
  random lookups (email, phone, unified id) against the profile store;
- api: p50/p99 of 1,000 `GET /api/profiles?q=…` against a running `cdp serve`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.monitor import measure

CDP = str(Path(sys.executable).parent / "cdp")

# Dagster step keys -> the stages of the flow
GROUPS = (
    ("raw__", "ingestion"),
    ("dbt_harmonise", "harmonise"),
    ("identity", "identity"),
    ("dbt_marts", "insights and segments"),
    ("activation", "activation"),
    ("catalog", "catalog and profile store"),
)


def _cdp(ws: Path, *args: str) -> dict:
    m = measure([CDP, *args, "-w", str(ws)], env={**os.environ, "CDP_WORKSPACE": str(ws)})
    if m.returncode != 0:
        print(m.output[-6000:])
        raise SystemExit(f"[bench] cdp {' '.join(args)} failed with exit code {m.returncode}")
    return {
        "seconds": round(m.seconds, 2),
        "peak_rss_mb": round(m.peak_rss_mb),
        "output": m.output.strip().splitlines()[-1:],
    }


def _last_run_id(ws: Path) -> str:
    return json.loads((ws / ".cdp" / "last_run.json").read_text())["run_id"]


def step_seconds(ws: Path, run_id: str) -> dict[str, float]:
    """Seconds per stage of one run, from the workspace's Dagster instance."""
    os.environ["DAGSTER_HOME"] = str(ws / ".cdp" / "dagster_home")
    import dagster as dg

    out: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for s in instance.get_run_step_stats(run_id):
            if s.start_time is None or s.end_time is None:
                continue
            group = next((g for prefix, g in GROUPS if s.step_key.startswith(prefix)), "other")
            out[group] = round(out.get(group, 0.0) + s.end_time - s.start_time, 2)
    return out


def _rows(ws: Path) -> int:
    import duckdb

    return duckdb.execute(
        f"select count(*) from read_parquet('{ws}/lake/raw/*/*/*.parquet', union_by_name=true)"
    ).fetchone()[0]


def _links(ws: Path):
    import pyarrow.parquet as pq

    return pq.read_table(
        ws / "lake" / "identity" / "unified_link_individual.parquet",
        columns=["source_name", "source_record_id", "unified_individual_id", "record_kind"],
    )


def stage_run(ws: Path) -> dict:
    out = _cdp(ws, "run", "--quiet")
    out["rows"] = _rows(ws)
    out["rows_per_min"] = round(out["rows"] / out["seconds"] * 60)
    out["stages"] = step_seconds(ws, _last_run_id(ws))
    return out


def stage_rerun(ws: Path) -> dict:
    return _cdp(ws, "run")


def stage_increment(ws: Path, customers: int) -> dict:
    before = _links(ws)
    added = max(1, customers // 100)
    subprocess.run(
        [CDP, "generate", "--append", "--customers", str(added), "-w", str(ws)],
        check=True,
        capture_output=True,
    )
    out = _cdp(ws, "run", "--quiet")
    after = _links(ws)
    import duckdb

    # earlier person records whose unified id changed (cookies may join people: not counted)
    con = duckdb.connect()
    con.register("before", before)
    con.register("after", after)
    moved, kept = con.execute(
        "select count(*) filter (where a.unified_individual_id != b.unified_individual_id), "
        "count(*) from before b join after a using (source_name, source_record_id) "
        "where b.record_kind = 'person'"
    ).fetchone()
    people = "select count(*) from {} where record_kind = 'person'"
    out.update(
        customers_added=added,
        # person records (cookies are links too, but not records of a person)
        person_records_before=con.execute(people.format("before")).fetchone()[0],
        person_records_after=con.execute(people.format("after")).fetchone()[0],
        earlier_records_kept=kept,
        earlier_records_with_a_new_id=moved,
        stages=step_seconds(ws, _last_run_id(ws)),
    )
    return out


def _sample(ws: Path, n: int) -> list[str]:
    import duckdb

    con = duckdb.connect()
    c360 = ws / "lake" / "marts" / "customer_360.parquet"
    rows = con.execute(
        f"select email_address, phone_e164, unified_individual_id from read_parquet('{c360}') "
        f"using sample reservoir({n} rows) repeatable (7)"
    ).fetchall()
    rnd = random.Random(7)
    out = []
    for email, phone, uid in rows:
        options = [v for v in (email, phone, uid) if v]
        out.append(rnd.choice(options))
    return out


def _percentiles(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "lookups": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


def stage_profile(ws: Path) -> dict:
    from cdp.profile import find, load, open_store

    queries = _sample(ws, 1000)
    whole = _cdp(ws, "profile", queries[0], "--format", "json")
    con = open_store(_workspace(ws))
    region = con.execute("select default_region from meta").fetchone()[0]
    times = []
    found = 0
    for q in queries:
        t0 = time.perf_counter()
        ids = find(con, q, region)
        docs = [load(con, uid) for uid in ids]
        times.append((time.perf_counter() - t0) * 1000)
        found += bool(docs)
    return {
        "command_seconds": whole["seconds"],
        **_percentiles(times),
        "found": found,
    }


def _workspace(ws: Path):
    from cdp.workspace import resolve_workspace

    return resolve_workspace(ws)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage_api(ws: Path) -> dict:
    from urllib.error import HTTPError
    from urllib.parse import quote

    port = _free_port()
    proc = subprocess.Popen(
        [CDP, "serve", "--port", str(port), "-w", str(ws)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        times, found = [], 0
        for q in _sample(ws, 1000):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{base}/api/profiles?q={quote(q)}", timeout=10) as r:
                    r.read()
                    found += r.status == 200
            except HTTPError as e:
                e.read()
                found += e.code == 300  # several people: answered with the candidates
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**_percentiles(times), "found": found}


def resend_moved(ws: Path, contacts: int) -> Path:
    """A new CRM landing file: `contacts` of the contacts of the first load again, each
    with another street and a later modified_at (people who moved)."""
    import duckdb

    folder = ws / "landing" / "crm_contacts"
    first = sorted(folder.glob("crm_contacts_*.csv"))[0]
    out = folder / "crm_contacts_moved.csv"
    con = duckdb.connect()
    con.execute(
        f"""
        copy (
            select * replace (
                cast(100 + hash(contact_id) % 9000 as varchar) || ' Moved Street' as street,
                strftime(
                    cast(max(modified_at) over () as timestamp) + interval 1 day,
                    '%Y-%m-%d %H:%M:%S'
                ) as modified_at
            )
            from read_csv('{first}', header = true, all_varchar = true, quote = '"')
            using sample {contacts} rows (reservoir, 7)
        ) to '{out}' (header, quote '"', force_quote *)
        """
    )
    return out


def stage_edits(ws: Path, customers: int) -> dict:
    before = _links(ws)
    moved = max(1, customers // 100)
    resend_moved(ws, moved)
    out = _cdp(ws, "run", "--quiet")
    after = _links(ws)
    import duckdb

    con = duckdb.connect()
    con.register("before", before)
    con.register("after", after)
    changed = con.execute(
        "select count(*) filter (where a.unified_individual_id != b.unified_individual_id) "
        "from before b join after a using (source_name, source_record_id) "
        "where b.record_kind = 'person'"
    ).fetchone()[0]
    # (a moved record may rightly leave its person or join another: counted, not a check)
    out.update(
        contacts_moved=moved,
        person_records_with_another_id=changed,
        stages=step_seconds(ws, _last_run_id(ws)),
    )
    return out


def run_scale(bench_dir: Path, customers: int, results: dict, save) -> None:
    """Generate (timed by bench.run's stage runner), then the stages above, each once;
    a rerun of `make bench` with BENCH_RESUME=1 continues from the first missing one."""
    from bench.run import run_stage

    part = results.setdefault("scale", {})
    if part.get("customers") != customers:
        part.clear()
        part.update(customers=customers, stages={})
    done = part["stages"]
    ws = bench_dir / f"scale_{customers}"
    if "generate" not in done:
        shutil.rmtree(ws, ignore_errors=True)
        done["generate"] = run_stage("generate", ws, str(customers))
        save()
    # The workspace `cdp generate` makes: cdp.yml, the demo's segments and activation (an
    # earlier file is kept). Without them the run would skip segments and exports, and
    # the increment's `cdp generate --append` would write them, changing the configuration.
    subprocess.run([CDP, "init", str(ws)], check=True, capture_output=True)
    steps = (
        ("run", lambda: stage_run(ws)),
        ("rerun", lambda: stage_rerun(ws)),
        ("increment", lambda: stage_increment(ws, customers)),
        ("edits", lambda: stage_edits(ws, customers)),
        ("profile", lambda: stage_profile(ws)),
        ("api", lambda: stage_api(ws)),
    )
    for name, fn in steps:
        if name in done:
            continue
        print(f"[bench] {name:<10} {ws.name} ...", flush=True)
        done[name] = fn()
        print(f"[bench] {name:<10} {json.dumps(done[name], default=str)}", flush=True)
        save()
