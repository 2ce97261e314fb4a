"""Whether a dbt layer's build is an increment, and which loads are new to it.

Two layers rebuild only what new loads touch and keep the rest of their last output:

- **harmonise**: each deduplicated table (int_*_deduplicated) stages and deduplicates
  again only the source records that have a row in a new load, with every version of
  them across all loads, and keeps every other record's row from the last build. A
  record's row depends only on its own versions, so this is the full build's answer.
  A snapshot source with a new load is taken whole (records missing from the new
  extract must go). `int_person_records_prepared` (identity's input) computes again
  only the records staged again and those sharing an email or phone with one, now or as
  last built: a record's match keys depend on how many records hold its email.
- **marts**: unified_individual and unified_contact_point are per person: a person's
  rows depend only on their cluster and their records. An increment computes only the
  people whose cluster changed or who have a record in a load the marts have not seen
  (int_unified_individuals_changed) and keeps everyone else's rows. The attributed
  activity tables (ATTRIBUTED) attribute again only the rows of new loads and those
  whose person record, cookie, email or phone now resolves otherwise than in the last
  build, which the marts find by comparing the links and contact keys with the copies
  that build kept (Layer.seen: int_links_changed, int_contact_keys_changed), and write
  those that differ as a new part. individual_consent decides again only the changed
  people and those a consent record of a new load names, now or as that build read it
  (CONSENT, dbt_models/macros/consent.sql), and int_contact_keys_resolved counts again
  only the emails and phones a new or edited row or a changed link carries
  (CONTACT_KEYS, dbt_models/macros/contact_keys.sql).

`.cdp/<layer>_built.json` records what the last successful build of the layer saw: the
run's fingerprint (configuration and code, cdp.run_plan) and every raw load then in the
lake. The next build is an increment only when all of this holds, and is full otherwise:
- the engine is DuckDB (Spark builds its layers whole);
- no full refresh was asked for;
- the fingerprint is the same;
- every load seen then is still in the lake (a retired or erased load changes rows that
  no new load points to);
- last build's files are whole (Parquet footers readable).

The record is removed before a build starts and written again only after it succeeded,
so a killed or failed build leaves none and the next build is full. A build that selects
none of a layer's models leaves the record as it is; one that selects only some of them
is handled per layer (plan_build).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cdp.harmonise.dbt_codegen import deduplicated_model_name
from cdp.io import parts
from cdp.model.canonical import CONTACT_POINT_OBJECTS, OBJECTS, PERSON_OBJECTS
from cdp.run_plan import CONFIG
from cdp.workspace import Workspace


@dataclass(frozen=True)
class Layer:
    name: str
    env: str  # the variable the layer's macros read (dbt_models/macros/increment.sql)
    kept: tuple[str, ...]  # the models an increment reads back (previous_output())
    models: tuple[str, ...]  # what an increment must build together
    folder: str  # the Workspace property holding the kept files
    # kept tables an increment extends with a new part instead of writing them again
    parted: tuple[str, ...] = ()
    # the workspace files its result depends on (cdp.run_plan.fingerprint), besides code
    config_files: tuple[str, ...] = CONFIG
    # inputs kept as the last build read them ((Workspace folder property, table name)),
    # for an increment to compare with what they are now (macro seen_input)
    seen: tuple[tuple[str, str], ...] = ()

    @property
    def state(self) -> str:
        return f"{self.name}_built.json"

    def seen_dir(self, ws: Workspace) -> Path:
        """Where the `seen` inputs are kept: in the lake, beside the layer's tables, so
        an erasure reaches them (cdp.privacy.forget rewrites every Parquet file there)."""
        return getattr(ws, self.folder) / "_seen"


_DEDUPLICATED = tuple(deduplicated_model_name(name) for name in OBJECTS)
# identity's input: one row per person record, from these objects' tables
PERSON_RECORDS = "int_person_records_prepared"
_PERSON_RECORD_OBJECTS = {*PERSON_OBJECTS, *CONTACT_POINT_OBJECTS}
HARMONISE = Layer(
    name="harmonise",
    env="CDP_HARMONISE_INCREMENT",
    kept=(*_DEDUPLICATED, PERSON_RECORDS),
    models=(*_DEDUPLICATED, PERSON_RECORDS),
    folder="harmonised_dir",
    parted=(*_DEDUPLICATED, PERSON_RECORDS),
    # not identity_model.json: the first run writes it after harmonising
    config_files=("cdp.yml", "sources/*.y*ml"),
)
_PER_PERSON = ("unified_individual", "unified_contact_point")
# Activity with its unified individual: a row depends only on itself, the links and the
# contact keys (macro attribute_to_individual). An increment attributes again only the
# rows whose inputs changed and writes those that differ as a new part
# (dbt_models/macros/increment.sql: activity_again, attributed_rows).
ATTRIBUTED = (
    "int_engagement_emails_attributed",
    "int_engagement_webs_attributed",
    "int_sales_orders_attributed",
    "int_service_cases_attributed",
)
# Each person's consent, per purpose and channel: it depends only on their records, the
# emails and phones those hold, and the consent records naming either. An increment
# decides again only the people whose records changed or whom a new or edited consent
# record names, now or before its edit (macro consent_again).
CONSENT = "individual_consent"
# How many people hold each email and phone: an increment counts again only the keys
# carried by a new or edited email or phone row, or by a record linked otherwise
# (macro contact_keys_again).
CONTACT_KEYS = "int_contact_keys_resolved"
MARTS = Layer(
    name="marts",
    env="CDP_MARTS_INCREMENT",
    kept=(*_PER_PERSON, *ATTRIBUTED, CONSENT, CONTACT_KEYS),
    models=(
        "int_unified_individuals_changed",
        *_PER_PERSON,
        "int_links_changed",
        CONTACT_KEYS,
        "int_contact_keys_changed",
        *ATTRIBUTED,
        CONSENT,
    ),
    folder="marts_dir",
    parted=ATTRIBUTED,
    seen=(
        ("identity_dir", "unified_link_individual"),
        ("marts_dir", CONTACT_KEYS),
        # the records as that build read them: what an edited record named or carried
        ("harmonised_dir", "int_contact_point_consents_deduplicated"),
        ("harmonised_dir", "int_contact_point_emails_deduplicated"),
        ("harmonised_dir", "int_contact_point_phones_deduplicated"),
    ),
)
LAYERS = (HARMONISE, MARTS)


def _state(ws: Workspace, layer: Layer) -> Path:
    return ws.state_dir / layer.state


def live_loads(ws: Workspace) -> dict[str, list[str]]:
    """Every source's loads in the raw lake (folders `load_id=...`), sorted."""
    out: dict[str, list[str]] = {}
    if not ws.raw_dir.is_dir():
        return out
    for source in sorted(p for p in ws.raw_dir.iterdir() if p.is_dir()):
        loads = sorted(
            p.name.split("=", 1)[1]
            for p in source.iterdir()
            if p.is_dir() and p.name.startswith("load_id=")
        )
        out[source.name] = loads
    return out


def _whole(path: Path) -> bool:
    import pyarrow.parquet as pq

    if path.is_dir():
        return parts.whole(path)
    try:
        pq.read_metadata(path)
    except (OSError, ValueError):
        return False
    return True


def _snapshot_sources(ws: Workspace) -> set[str]:
    from cdp.config.sources import load_sources

    return {s.name for s in load_sources(ws.sources_dir) if s.mode == "snapshot"}


def increment(
    ws: Workspace,
    layer: Layer,
    *,
    engine: str,
    full_refresh: bool,
    models: tuple[str, ...] | None = None,
) -> tuple[dict | None, str]:
    """({"new_loads": {source: [load id]}, "whole_sources": [...]}, why) for an
    increment; (None, why) for a full build. Whole sources are snapshot sources with a
    new load: each load is a full extract, so all their rows are taken again. `models`:
    the kept models the build selects (all of them when None)."""
    from cdp.run_plan import fingerprint

    if engine != "duckdb":
        return None, f"the {engine} engine builds the {layer.name} layer whole"
    if full_refresh:
        return None, "full refresh"
    try:
        seen = json.loads(_state(ws, layer).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"no earlier {layer.name} build to start from"
    if seen.get("fingerprint") != fingerprint(ws, layer.config_files):
        return None, f"configuration or code changed since the last {layer.name} build"
    live = live_loads(ws)
    before: dict[str, list[str]] = seen.get("loads") or {}
    for source, loads in before.items():
        gone = set(loads) - set(live.get(source, []))
        if gone:
            return None, f"{len(gone)} load(s) of {source} left the lake since the last build"
    folder: Path = getattr(ws, layer.folder)
    for name in layer.kept if models is None else set(layer.kept) & set(models):
        if not _whole(folder / f"{name}.parquet"):
            return None, f"{name} of the last build is missing or incomplete"
    for _, name in layer.seen:
        if not _whole(layer.seen_dir(ws) / f"{name}.parquet"):
            return None, f"{name} as the last {layer.name} build read it was not kept"
    new = {}
    for source, loads in live.items():
        old = set(before.get(source, []))
        if fresh := [x for x in loads if x not in old]:
            new[source] = fresh
    # (a declaration that cannot be read fails the run before any dbt build starts)
    whole = sorted(_snapshot_sources(ws) & set(new)) if new else []
    return {"new_loads": new, "whole_sources": whole}, "increment"


@dataclass(frozen=True)
class Plan:
    increment: dict | None  # None: the selected models are built whole
    why: str
    # `all`: the build may be an increment and its record is rewritten; `some`: built
    # whole, the record goes (the next build is full); `none`: the record stays.
    scope: str
    # loads the rewritten record must not count as seen: new loads of a source some of
    # whose readers this build leaves out (they would miss them otherwise)
    hold_back: dict[str, list[str]] = field(default_factory=dict)


def _readers(ws: Workspace) -> dict[str, set[str]]:
    """source -> the kept tables that read its rows: the deduplicated tables of its
    objects, and the person records when it maps a person object or a contact point."""
    from cdp.config.sources import load_sources

    out = {}
    for s in load_sources(ws.sources_dir):
        tables = {deduplicated_model_name(obj) for obj in s.objects}
        if _PERSON_RECORD_OBJECTS & set(s.objects):
            tables.add(PERSON_RECORDS)
        out[s.name] = tables
    return out


def plan_build(
    ws: Workspace, layer: Layer, selected: set[str], *, engine: str, full_refresh: bool
) -> Plan:
    """How to build the `selected` models of the layer.

    A marts build that leaves some of its kept models out builds the others whole. A
    harmonise build may leave some deduplicated tables out and still be an increment
    (`cdp run --source x` selects only what x feeds): a table's record is then right
    as long as it counts as seen only loads that table took in, so the new loads of a
    source with a reader left out are held back, and the next build stages them again
    (staging a load twice gives the same rows). Built whole, every load of such a source
    is held back: its readers left out may not have seen any."""
    chosen = selected & set(layer.models)
    if not chosen:
        return Plan(
            None, f"the {layer.name} layer's kept models are not part of this build", "none"
        )
    partial = chosen != set(layer.models)
    if partial and layer is not HARMONISE:
        why = f"only some of the {layer.name} layer's kept models are part of this build"
        return Plan(None, why, "some")
    increment_, why = increment(
        ws, layer, engine=engine, full_refresh=full_refresh, models=tuple(sorted(chosen))
    )
    if not partial:
        return Plan(increment_, why, "all")
    # Built whole, the chosen tables took in every live load; as an increment, the new ones.
    taken = increment_["new_loads"] if increment_ else live_loads(ws)
    readers = _readers(ws)
    hold_back = {
        source: loads for source, loads in taken.items() if readers.get(source, set()) - chosen
    }
    return Plan(increment_, why, "all", hold_back)


def touched_dir(ws: Workspace) -> Path:
    """Where a harmonise increment's deduplicated tables leave the records they staged
    again, for int_person_records_prepared in the same build
    (dbt_models/macros/increment.sql): emptied before each build, removed after it."""
    return ws.state_dir / "touched"


def lay_out_parts(ws: Workspace, layer: Layer, selected: set[str], plan: Plan) -> None:
    """Before a build of the layer (its record already gone): each selected table kept in
    parts becomes a folder of parts for an increment, and one file again for a full
    build (cdp/io/parts.py)."""
    if layer is HARMONISE:
        shutil.rmtree(touched_dir(ws), ignore_errors=True)
        if plan.increment:
            touched_dir(ws).mkdir(parents=True)
    for path in _parted(ws, layer, selected):
        if plan.increment:
            parts.split(path)
        else:
            parts.remove(path)


def tidy_parts(ws: Workspace, layer: Layer, selected: set[str]) -> None:
    """After a successful build, before its record is written: empty parts go, and a
    table with too many parts has them merged."""
    if layer is HARMONISE:
        shutil.rmtree(touched_dir(ws), ignore_errors=True)
    for path in _parted(ws, layer, selected):
        if parts.is_parted(path):
            parts.tidy(path)


def _parted(ws: Workspace, layer: Layer, selected: set[str]) -> list[Path]:
    """The paths of the selected tables the layer keeps in parts."""
    folder: Path = getattr(ws, layer.folder)
    return [folder / f"{name}.parquet" for name in sorted(set(layer.parted) & selected)]


def forget(ws: Workspace, layer: Layer | None = None) -> None:
    """The next build of `layer` (of every layer when None) is full: before a build,
    and after an erasure."""
    for each in (layer,) if layer else LAYERS:
        _state(ws, each).unlink(missing_ok=True)
    if layer in (None, HARMONISE):
        # (record ids a killed build left: an erasure leaves none behind)
        shutil.rmtree(touched_dir(ws), ignore_errors=True)


def record(ws: Workspace, layer: Layer, hold_back: dict[str, list[str]] | None = None) -> None:
    """After a successful build of the layer: what it saw (every live load but those
    held back)."""
    from cdp.io.atomic import write_text
    from cdp.run_plan import fingerprint

    keep_seen(ws, layer)
    held = hold_back or {}
    loads = {
        source: [x for x in found if x not in held.get(source, ())]
        for source, found in live_loads(ws).items()
    }
    state = {"fingerprint": fingerprint(ws, layer.config_files), "loads": loads}
    write_text(_state(ws, layer), json.dumps(state, indent=1) + "\n")


def keep_seen(ws: Workspace, layer: Layer) -> None:
    """The layer's `seen` inputs as this build read them, beside its record: a hard link
    to each file (every writer replaces a file by renaming a new one over it, so the
    link keeps this version), or a copy where links are not supported. A table kept in
    parts (cdp/io/parts.py) is kept as a folder of links to its parts."""
    from cdp.io.atomic import TMP_PREFIX

    if not layer.seen:
        return
    folder = layer.seen_dir(ws)
    folder.mkdir(parents=True, exist_ok=True)
    for attr, name in layer.seen:
        source: Path = getattr(ws, attr) / f"{name}.parquet"
        target = folder / f"{name}.parquet"
        tmp = folder / f"{TMP_PREFIX}{name}.parquet"
        _remove(tmp)
        if parts.is_parted(source):
            tmp.mkdir()
            for file in [source / parts.MARKER, *parts.part_files(source)]:
                _link(file, tmp / file.name)
        elif source.is_file():
            _link(source, tmp)
        else:  # (the next build is then full: increment())
            _remove(target)
            continue
        # a folder cannot be renamed over anything (nor a file over a folder): killed
        # between the two, the input is missing and the next build is full
        if tmp.is_dir() or target.is_dir():
            _remove(target)
        os.replace(tmp, target)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
