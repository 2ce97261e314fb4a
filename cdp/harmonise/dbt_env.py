"""How dbt finds a workspace: environment variables, generated models, parse."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

from cdp.config.settings import RECONCILED_FIELDS, Settings, load_settings
from cdp.config.sources import load_sources
from cdp.errors import CdpError, ConfigError
from cdp.harmonise import parse_cache
from cdp.io.duckdb_memory import block_allocator_memory
from cdp.workspace import Workspace


def _dbt_project_dir() -> Path:
    """The dbt project: the `dbt_models` package (package data of the wheel; in a
    checkout, the repository's folder)."""
    spec = importlib.util.find_spec("dbt_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parent.parent.parent / "dbt_models"


DBT_PROJECT_DIR = _dbt_project_dir()


# cdp.yml `engine` -> the target of profiles.yml that runs the dbt project.
DBT_TARGETS = {"duckdb": "workspace", "spark": "spark"}


# What a workspace's dbt project links to in the package's (everything dbt reads).
_PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "tests")


def project_dir(ws: Workspace) -> Path:
    """The dbt project as this workspace runs it (made by `link_project`)."""
    return ws.state_dir / "dbt_project"


def generated_dir(ws: Workspace) -> Path:
    return project_dir(ws) / "generated"


def link_project(ws: Workspace) -> Path:
    """Make or mend the workspace's dbt project: `<workspace>/.cdp/dbt_project`, links to
    the package's project files beside a real `generated/` folder of this workspace's
    models (cdp.harmonise.dbt_codegen).

    Why not the package's project with the generated folder added by absolute path: dbt
    writes each model's compiled and run SQL to `target/compiled/<original path>`, and
    an absolute original path makes that the model's own file. Every build overwrote the
    generated models, so every run regenerated them and dbt parsed the project again
    from scratch (about 10 s of CPU a run on any workspace, defeating partial parsing).
    Inside this folder the generated models have relative paths like the package's."""
    root = project_dir(ws)
    root.mkdir(parents=True, exist_ok=True)
    for name in _PROJECT_PARTS:
        link, source = root / name, DBT_PROJECT_DIR / name
        if link.is_symlink() and os.readlink(link) == str(source):
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()  # the package moved (a new install): point at the new one
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            link.symlink_to(source, target_is_directory=source.is_dir())
    return root


def dbt_paths(ws: Workspace, engine: str, relative: bool = True) -> tuple[str, str]:
    """The workspace folder and dbt's DuckDB file as dbt's files name them.

    Relative to the folder dbt runs in, the workspace's project (`project_dir`, where
    dagster-dbt starts dbt), so neither dbt's parse nor its views name a particular
    folder: one workspace's parse seeds the next one's (cdp.harmonise.parse_cache), and a
    moved workspace's views read its own lake. Absolute on Spark, whose relative paths
    would resolve elsewhere, and for dbt started from another folder (the lint)."""
    if engine != "duckdb" or not relative:
        return str(ws.root), str(ws.dbt_database)
    here = project_dir(ws)
    return os.path.relpath(ws.root, here), os.path.relpath(ws.dbt_database, here)


def dbt_env(ws: Workspace, relative: bool = True) -> dict[str, str]:
    from cdp.identity.settings import IdentitySettings
    from cdp.validate import path_problem

    if problem := path_problem(ws.root):  # (`cdp run` stops before: cdp validate says so)
        raise CdpError(f"{ws.root}: {problem}")

    settings = load_settings(ws.settings_file)
    identity = IdentitySettings.from_dict(settings.identity, ws.settings_file)
    memory_limit = os.environ.get("CDP_DBT_MEMORY_LIMIT", "3GB")
    workspace, database = dbt_paths(ws, settings.engine, relative)
    return {
        **insight_env(settings),
        # cdp's own code inside dbt (the phone cache, Spark's session) finds the
        # workspace here; dbt's files use CDP_DBT_WORKSPACE.
        "CDP_WORKSPACE": str(ws.root),
        "CDP_DBT_WORKSPACE": workspace,
        "CDP_DBT_DATABASE": database,
        # Relative to the project: dbt runs the workspace's project (project_dir).
        "CDP_DBT_GENERATED": "generated",
        "CDP_DEFAULT_REGION": settings.default_region,
        "CDP_IDENTITY_MAX_KEY_RECORDS": str(identity.max_identifier_records),
        # The engine picks the profile target: `workspace` (DuckDB) or `spark`. (Not
        # CDP_ENGINE: this lands in os.environ, where it would choose every later
        # workspace's engine.)
        "CDP_DBT_TARGET": DBT_TARGETS[settings.engine],
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        # dbt's own log goes to the workspace, never into the (installed) project folder.
        "DBT_LOG_PATH": str(ws.state_dir / "dbt_logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # dbt's log file at info, not debug: the debug lines (every statement) were a
        # sixth of dbt's own CPU time on a small workspace. DBT_LOG_LEVEL_FILE=debug
        # in the environment brings them back.
        "DBT_LOG_LEVEL_FILE": os.environ.get("DBT_LOG_LEVEL_FILE", "info"),
        "CDP_DBT_THREADS": str(dbt_threads()),
        # DuckDB's memory ceiling inside dbt (spills past it): 3GB unless the user's
        # environment says otherwise, so a run stays within about 6 GB with identity's.
        "CDP_DBT_MEMORY_LIMIT": memory_limit,
        # DuckDB's buffers kept between models instead of handed back to the system
        # (cdp/io/duckdb_memory.py): a share of that ceiling.
        # (the user's CDP_DBT_BLOCK_MEMORY, if set, is read there and never written here)
        "CDP_DBT_BLOCK_ALLOCATOR": block_allocator_memory(memory_limit),
        # Full builds unless the layer's asset says otherwise (cdp/harmonise/increments.py):
        # os.environ outlives a build, and any other dbt call must not inherit an increment.
        "CDP_HARMONISE_INCREMENT": "",
        "CDP_MARTS_INCREMENT": "",
    }


def insight_env(settings: Settings) -> dict[str, str]:
    """The `insights:` and `reconciliation:` settings as the variables the marts read."""
    insights, rec = settings.insights, settings.reconciliation
    env = {
        "CDP_REPORTING_CURRENCY": insights.reporting_currency,
        "CDP_AS_OF": insights.as_of,
        "CDP_ATTRIBUTION_WINDOW_DAYS": str(insights.attribution_window_days),
        "CDP_RECOMMENDATION_PAIRS": str(insights.recommendation_pairs),
        # Source names are identifiers ([a-z0-9_]), so a comma list is unambiguous.
        "CDP_SOURCE_PRIORITY": ",".join(rec.source_priority),
    }
    for field in RECONCILED_FIELDS:
        env[f"CDP_RECONCILE_{field.upper()}"] = rec.rule(field)
    return env


def check_source_priority(settings: Settings, declared: set[str], path: Path) -> None:
    """A source named in reconciliation.source_priority must be declared: a typo would
    silently rank that source last."""
    unknown = [n for n in settings.reconciliation.source_priority if n not in declared]
    if unknown:
        raise ConfigError(
            path,
            f"reconciliation.source_priority: unknown source {unknown[0]!r} "
            f"(declared: {', '.join(sorted(declared)) or 'none'})",
        )


_NOISE = ("Runtime Error in", "Database Error in", "Compilation Error in", "Failure in")
FAILED = ("error", "fail", "runtime error")


def _message_line(message: str | None) -> str:
    """The line of a dbt message that says what went wrong, not where."""
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_NOISE)]
    return (useful or lines or ["failed"])[0]


def dbt_failure(target: Path, ws: Workspace | None = None) -> str | None:
    """One line from `run_results.json` in a dbt target path: the first failing node (a
    model, test or seed) and dbt's message, with how many others failed. None when dbt
    wrote no failing result (it stopped before running anything). Given the workspace, a
    failing `invariants` test also names the rules broken (broken_rules)."""
    path = Path(target) / "run_results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8")).get("results", [])
    except (OSError, ValueError):
        return None
    failed = [r for r in results if str(r.get("status", "")).lower() in FAILED]
    if not failed:
        return None
    first = failed[0]
    kind, _, name = str(first.get("unique_id", "")).partition(".")
    name = name.split(".", 1)[-1] if "." in name else name
    if kind == "test" and "." in name:
        name = name.rsplit(".", 1)[0]  # a generic test's id ends in a hash
    line = f"dbt {kind} {name}: {_message_line(first.get('message'))}"
    if ws is not None and name.startswith("invariants_") and (rules := broken_rules(ws, first)):
        line += f" ({rules})"
    if len(failed) > 1:
        line += f" (and {len(failed) - 1} more failing node(s); see {path})"
    return line


def broken_rules(ws: Workspace, result: dict) -> str | None:
    """The rules a failing `invariants` test found broken, as "not_null(x): 2 rows; ...",
    from its compiled query run again on dbt's database (dbt's own message only counts
    rows). Rules name columns, never values. None when the query cannot run (on Spark,
    whose dbt keeps no database)."""
    import duckdb

    sql = result.get("compiled_code")
    if not sql or not ws.dbt_database.exists():
        return None
    try:
        con = connect_dbt_database(ws, read_only=True)
        try:
            rows = con.execute(f"select rule, failing from ({sql}) order by rule").fetchall()
        finally:
            con.close()
    except (duckdb.Error, OSError):
        return None
    broken = []
    for rule, n in rows:
        what = "value(s) held by several rows" if rule.startswith("unique(") else "row(s)"
        broken.append(f"{rule}: {n} {what}")
    return "; ".join(broken) or None


def dbt_log_error(text: str) -> str | None:
    """The first error dbt logged (from dagster-dbt's error or dbt's stdout), one line."""
    marker = "Errors parsed from dbt logs:"
    if marker in text:
        text = text.split(marker, 1)[1]
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_NOISE) and ("Error" in line or "error" in line):
            return line
    return None


def dbt_executable() -> str:
    """dbt through `cdp-dbt`, which dies with its parent (cdp.harmonise.dbt_child)."""
    launcher = Path(sys.executable).parent / "cdp-dbt"
    if launcher.exists():
        return str(launcher)
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


def dbt_threads() -> int:
    """dbt's threads: one per core (DuckDB itself uses them too, but dbt's models wait on
    each other less with several)."""
    return max(1, os.cpu_count() or 1)


def cli_resource_class():
    """dagster-dbt's DbtCliResource, less two start-up costs this project never uses.

    Before each command, DbtCliResource runs `dbt --version` in a new process (to tell
    dbt Core from the Fusion engine) and loads dbt's project, profile and adapter in this
    process (for its row-count and column fetchers, which open dbt's DuckDB file; we read
    row counts from the Parquet footers instead). Together about 10 s of CPU per run on a
    small workspace, measured with py-spy. Here dbt is always dbt Core, the one installed
    beside this interpreter, so its version is read from the package metadata and no
    adapter is made: dagster-dbt then streams events exactly as it does without one."""
    from functools import cached_property
    from importlib.metadata import version as installed_version

    from dagster_dbt import DbtCliResource
    from packaging.version import Version

    class CdpDbtCliResource(DbtCliResource):
        @cached_property
        def _cli_version(self) -> Version:
            return Version(installed_version("dbt-core"))

        def _initialize_dbt_core_adapter(self, args):
            return None

    return CdpDbtCliResource


def dbt_resource(ws: Workspace):
    """The one way dbt runs here: dagster-dbt's DbtCliResource (a subprocess, through
    `cdp-dbt`, which dies with its parent), with the workspace's environment."""
    os.environ.update(dbt_env(ws))
    return cli_resource_class()(
        project_dir=str(project_dir(ws)),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )


def run_dbt(ws: Workspace, args: list[str], target: Path | None = None):
    """Run a dbt command to its end outside Dagster (parse, docs, the bench and the
    tests), failing with dbt's failing node and message."""
    target = target or ws.dbt_target_dir
    (target / "run_results.json").unlink(missing_ok=True)  # a stale file names an old failure
    invocation = dbt_resource(ws).cli(args, target_path=target, raise_on_error=False)
    invocation.wait()
    if not invocation.is_successful():
        error = invocation.get_error()
        detail = dbt_failure(target, ws) or dbt_log_error(str(error or "")) or "see dbt's log"
        raise CdpError(f"dbt {args[0]} failed: {detail}")
    return invocation


def _newest_mtime(*roots: Path) -> float:
    newest = 0.0
    for root in roots:
        for p in root.rglob("*"):
            if (
                p.suffix in {".sql", ".yml", ".yaml"}
                and "target" not in p.parts
                and "logs" not in p.parts
            ):
                newest = max(newest, p.stat().st_mtime)
    return newest


def _manifest_adapter(manifest: Path) -> str | None:
    import json

    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["metadata"]["adapter_type"]
    except (OSError, ValueError, KeyError):
        return None


def prepare(ws: Workspace, force: bool = False) -> Path:
    """Generate this workspace's dbt models, and parse the project when anything changed.

    Generated files are rewritten only when their content changes, so an unchanged
    workspace keeps its manifest. Returns the path of manifest.json.
    """
    from cdp.harmonise.dbt_codegen import write_generated_models

    ws.state_dir.mkdir(parents=True, exist_ok=True)
    specs = load_sources(ws.sources_dir)
    settings = load_settings(ws.settings_file)
    if settings.engine == "spark":
        from cdp.spark.session import check_engine

        check_engine()
    check_source_priority(settings, {s.name for s in specs}, ws.settings_file)
    link_project(ws)
    moved_from = _dbt_root(ws)  # (before repoint_views records this root)
    moved = repoint_views(ws)
    shutil.rmtree(ws.state_dir / "dbt_generated", ignore_errors=True)  # the old place
    generated = write_generated_models(ws, specs, settings)
    # Models a run on the other engine wrote in its own layout (cdp.io.lake).
    from cdp.io.lake import settle_layout

    settle_layout([ws.harmonised_dir, ws.marts_dir], settings.engine)
    manifest = ws.dbt_target_dir / "manifest.json"
    # A new version of cdp is parsed from scratch: dbt's partial parsing of a new macro
    # file beside changed ones left a macro undefined ("'tested_rows' is undefined" when
    # a test's model was rendered). Known by the project's own files as last parsed here,
    # by content (an install may keep files older than the manifest), and by the parse
    # state being the one this parse left (another version's dbt may have parsed since).
    parsed_here = ws.dbt_target_dir / "cdp_project.sha256"
    project = _project_hash()
    target, here = ws.dbt_target_dir, str(project_dir(ws))
    if moved and moved_from:  # dbt's parse names the project folder it was made in
        old = str(Path(moved_from) / project_dir(ws).relative_to(ws.root))
        ours = parsed_here.exists() and parsed_here.read_text() == _parse_state(ws, project)
        parse_cache.retarget_file(target / parse_cache.PARSE_FILE, old, here)
        if ours:  # still the parse this prepare made, in its new place
            parsed_here.write_text(_parse_state(ws, project))
    # A new workspace starts from the parse of this very project made in another one.
    seeded = settings.engine == "duckdb" and parse_cache.seed(target, Path(here), project)
    state = _parse_state(ws, project)
    new_project = not seeded and (not parsed_here.exists() or parsed_here.read_text() != state)
    stale = (
        not manifest.exists()
        or new_project
        or _newest_mtime(DBT_PROJECT_DIR, generated) > manifest.stat().st_mtime
        or _manifest_adapter(manifest) != settings.engine  # parsed for the other engine
        or moved  # the manifest names the project's folder
    )
    if force or stale:
        parsed_here.unlink(missing_ok=True)
        run_dbt(ws, ["parse", "--quiet", *(["--no-partial-parse"] if new_project else [])])
        parsed_here.write_text(_parse_state(ws, project))
        if settings.engine == "duckdb":
            parse_cache.keep(target, Path(here), project)
    return manifest


def _dbt_root(ws: Workspace) -> str | None:
    """The workspace folder dbt last ran in, as repoint_views recorded it."""
    marker = ws.state_dir / "dbt_root"
    return marker.read_text() if marker.exists() else None


def _parse_state(ws: Workspace, project: str) -> str:
    """The project's hash and the size and time of dbt's partial-parse file (which dbt
    writes only when it parses something again)."""
    partial = ws.dbt_target_dir / "partial_parse.msgpack"
    stat = partial.stat() if partial.exists() else None
    return f"{project} {stat.st_size if stat else 0} {stat.st_mtime_ns if stat else 0}\n"


def _project_hash() -> str:
    """A hash of the dbt project's own files (not a workspace's generated models)."""
    from cdp.run_plan import code_files

    h = hashlib.sha256()
    for path in code_files(DBT_PROJECT_DIR):
        h.update(path.relative_to(DBT_PROJECT_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def repoint_views(ws: Workspace) -> bool:
    """Point dbt's views at this workspace's lake when the workspace was moved or copied.

    dbt-duckdb keeps a view per model in dbt's DuckDB file, over the model's file. Those
    paths are relative now (dbt_paths), but an older version of cdp made them absolute,
    and a build creates again only the views of the models it selects: after a move an
    increment's other models and tests read the old folder, and failed when it was gone
    (or, worse, read another workspace's lake). The root dbt last ran under is kept
    beside the file (`dbt_root`); where it differs, every view naming it is created again
    naming this one. Returns whether the workspace moved since dbt last ran in it."""
    db, marker = ws.dbt_database, ws.state_dir / "dbt_root"
    root = str(ws.root)
    old = _dbt_root(ws)
    moved = 0
    if db.exists() and old != root:
        # (cdp's functions registered: views call them, and a view is bound when made)
        con = connect_dbt_database(ws, read_only=False)
        try:
            views = con.execute(
                "select database_name, schema_name, sql from duckdb_views() where not internal"
            ).fetchall()
            # Without a marker (a workspace of an older version) the old root is not
            # known: only views naming a lake that is not this one's are looked at.
            here = _quoted(root)
            for database, schema, sql in views:
                before = _quoted(old) if old is not None else _foreign_root(sql, here)
                if before is None or before == here or before not in sql:
                    continue
                con.execute(f'use "{database}"."{schema}"')
                con.execute(
                    sql.replace(before, here).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)
                )
                moved += 1
            con.execute("checkpoint")
        finally:
            con.close()
    if old != root:
        from cdp.io.atomic import write_text

        write_text(marker, root)
    return moved > 0 or (old is not None and old != root)


def _quoted(root: str) -> str:
    """A root as it opens a path in SQL text: quoted, and with its own quotes doubled."""
    return "'" + root.replace("'", "''") + "/"


def _foreign_root(sql: str, here: str) -> str | None:
    """The quoted root before `/lake/` in a view's SQL, when it is not `here`."""
    import re

    match = re.search(r"'(/(?:[^']|'')*?)/lake/", sql)  # (relative paths never moved)
    if match is None:
        return None
    found = "'" + match.group(1) + "/"
    return None if found == here else found


def connect_dbt_database(ws: Workspace, read_only: bool = True):
    """dbt's DuckDB file, its views reading what they read inside dbt: their paths are
    relative to the workspace's dbt project (dbt_paths), whatever this process's folder."""
    import duckdb

    from cdp.harmonise.normalise import register_functions

    con = duckdb.connect(str(ws.dbt_database), read_only=read_only)
    register_functions(con)  # staging views call them
    folder = str(project_dir(ws)).replace("'", "''")
    con.execute(f"set file_search_path = '{folder}'")
    return con


def compact_database(ws: Workspace) -> None:
    """Rewrite dbt's DuckDB file with only what it holds now (views and seeds).

    External models are built in a table first and exported; the table is then dropped,
    but its pages stay in the file, personal data included. A fresh copy leaves them
    behind. The file is small (no model data lives in it), so this takes a moment.
    """
    import duckdb

    db = ws.dbt_database
    if not db.exists():  # never made on Spark, whose dbt keeps nothing between runs
        return
    tmp = db.with_name(f".tmp-{db.name}")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"attach '{db}' as old (read_only)")
        con.execute(f"attach '{tmp}' as fresh")
        con.execute("copy from database old to fresh")
    finally:
        con.close()
    os.replace(tmp, db)
    db.with_name(db.name + ".wal").unlink(missing_ok=True)
