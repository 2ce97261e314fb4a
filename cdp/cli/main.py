"""The `cdp` command line: init, generate, validate, run, sql, profile, serve, explain, identity."""

from __future__ import annotations

import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cdp.cli.errors import err_console, friendly_errors
from cdp.errors import CdpError
from cdp.workspace import Workspace, resolve_workspace

# Commands import what they need when they run: `cdp profile` must answer in a fraction
# of a second, so nothing heavy (duckdb's Python API, Dagster, Splink) loads up front.

app = typer.Typer(
    help="CDP lakehouse: ingest, harmonise, resolve identities, segment and activate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        envvar="CDP_WORKSPACE",
        help="Workspace folder (default: $CDP_WORKSPACE, else the current folder if it holds cdp.yml, else ./data).",
        show_default=False,
    ),
]


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
@friendly_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace.")],
    force: Annotated[
        bool, typer.Option(help="Write the example files even if they exist.")
    ] = False,
) -> None:
    """Make a new workspace with commented example configuration."""
    ws, written = _make_workspace(directory, force)
    _report_init(ws, written)


def _make_workspace(directory: Path, force: bool) -> tuple[Workspace, list[Path]]:
    ws = resolve_workspace(directory, must_exist=False)
    template = resources.files("cdp") / "templates" / "workspace"
    written = []
    with resources.as_file(template) as src:
        for path in sorted(Path(src).rglob("*")):
            if path.is_dir():
                continue
            target = ws.root / path.relative_to(src)
            if target.exists() and not force:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(target.relative_to(ws.root))
    ws.ensure_dirs()
    return ws, written


def _report_init(ws: Workspace, written: list[Path], brief: bool = False) -> None:
    if brief:  # made on the way by `cdp generate`: one line
        console.print(f"workspace [bold]{ws.root}[/]: {len(written)} example file(s) written")
        return
    console.print(f"workspace [bold]{ws.root}[/]: {len(written)} file(s) written")
    for w in written:
        console.print(f"  {w}")
    console.print("next: drop files in landing/<source>/, declare them in sources/, then `cdp run`")


@app.command()
@friendly_errors
def generate(
    workspace: WorkspaceOpt = None,
    customers: Annotated[int, typer.Option(min=1, help="How many true people.")] = 5000,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 42,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add new people as new landing files, keeping the files already there.",
        ),
    ] = False,
) -> None:
    """Generate a realistic multi-source demo (with ground truth) into the workspace."""
    from cdp.generate import generate as run_generate

    ws = resolve_workspace(workspace, must_exist=False)
    if not ws.settings_file.exists():
        _report_init(*_make_workspace(ws.root, force=False), brief=True)
    with _progress() as progress:
        task = progress.add_task("generating", total=None)

        def on_progress(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label or "generating")

        try:
            summary = run_generate(
                ws, customers=customers, seed=seed, progress=on_progress, append=append
            )
        except ValueError as e:
            raise CdpError(str(e)) from None
    console.print(
        f"{'added' if append else 'generated'} {summary.customers:,} customers (seed {summary.seed}) in "
        f"{summary.seconds:.1f}s: {sum(summary.rows.values()):,} rows in "
        f"{len(summary.rows)} sources under {ws.landing_dir}",
        soft_wrap=True,
    )


@app.command()
@friendly_errors
def validate(workspace: WorkspaceOpt = None) -> None:
    """Check the workspace in seconds, running nothing: the YAML, and each landed file.

    One line per problem naming the file, key and column; exit 1 on any."""
    from cdp.validate import validate_workspace

    ws = resolve_workspace(workspace)
    report = validate_workspace(ws)
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)
    console.print(report.summary(), highlight=False, soft_wrap=True)


def _print_report(report) -> None:
    for w in report.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    for p in report.problems:
        err_console.print(f"[bold red]problem:[/] {p}", highlight=False, soft_wrap=True)


@app.command()
@friendly_errors
def run(
    workspace: WorkspaceOpt = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild the lake from landing/.")
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option("--no-wait", help="Fail at once if another run holds the workspace."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run every asset even if nothing changed.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Dagster's, dbt's and Splink's logs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result.")] = False,
) -> None:
    """Run what changed: new files and what depends on them; nothing if nothing did.

    Everything runs again when the configuration or the code changed."""
    from cdp.run_lock import Holder, run_lock

    ws = resolve_workspace(workspace)

    def waiting(holder: Holder) -> None:
        console.print(
            f"waiting for run ({holder.describe('started at')}) to finish", soft_wrap=True
        )

    with run_lock(ws, wait=not no_wait, on_wait=waiting):
        _run_locked(ws, full_refresh, force=force, verbose=verbose, quiet=quiet)


def _quiet_libraries() -> None:
    """Third-party chatter stays off the console unless --verbose: Python warnings
    (deprecations), Splink's and dbt's loggers."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("splink", "dbt", "dagster", "dagster_dbt", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def _run_locked(
    ws: Workspace,
    full_refresh: bool,
    *,
    force: bool = False,
    verbose: bool = False,
    quiet: bool = False,
) -> None:
    from cdp import run_plan
    from cdp.validate import validate_workspace

    plan = run_plan.plan_run(ws, full_refresh=full_refresh)
    if force and not plan.full:
        plan = run_plan.RunPlan(True, "--force")
    if plan.nothing:
        console.print(f"nothing to do: {plan.reason}", soft_wrap=True)
        return
    # The same checks as `cdp validate`, before Dagster starts: a mistake in the YAML or a
    # landed file stops here, with one line per problem, not inside dbt a minute later.
    report = validate_workspace(ws, new_files_only=not plan.full)
    if verbose or not report.ok:
        _print_report(report)
    elif report.warnings and not quiet:
        console.print(
            f"validate: {len(report.warnings)} warning(s) about the landed data "
            "(`cdp validate` lists them)",
            highlight=False,
        )
    if not report.ok:
        raise CdpError(
            f"{len(report.problems)} problem(s) found by `cdp validate`: nothing was run"
        )
    if verbose:
        os.environ["CDP_VERBOSE"] = "1"
    else:
        _quiet_libraries()
    from cdp import collector
    from dagster_project.run import require_success, run_pipeline

    if not quiet:
        console.print(f"running: {plan.reason}", soft_wrap=True)
    started = time.monotonic()
    run_plan.run_started(ws)
    from cdp.cli.run_view import RunView, summarise_warnings

    # Bound to stdout as it is now: the run sends stray output (dbt's log) elsewhere.
    view = RunView(Console(file=sys.stdout))
    with view if not quiet else _Nothing(), collector.for_a_run():
        outcome = run_pipeline(
            ws,
            full_refresh=full_refresh,
            on_event=None if quiet else view.event,
            on_plan=None if quiet else view.plan,
            sources=None if plan.full else sorted(plan.sources),
            verbose=verbose,
        )
    run_plan.run_finished(ws, outcome.run_id, outcome.success)
    if not outcome.success and os.environ.get("CDP_DEBUG") and outcome.traceback:
        err_console.print(
            f"Traceback of the failing step (CDP_DEBUG=1):\n{outcome.traceback}",
            highlight=False,
            markup=False,
        )
    require_success(outcome)
    if not quiet:
        for line in summarise_warnings(outcome.warnings):
            console.print(f"[yellow]warning:[/] {line}", soft_wrap=True, highlight=False)
        from cdp.cli.render import print_run_summary

        print_run_summary(console, ws, outcome, time.monotonic() - started)
    else:
        console.print(f"run {outcome.run_id} finished in {time.monotonic() - started:.1f}s")


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


@app.command()
@friendly_errors
def prepare(workspace: WorkspaceOpt = None) -> None:
    """Generate the workspace's dbt models and parse the project (before `dagster dev`)."""
    from cdp.harmonise.dbt_env import prepare as run_prepare

    ws = resolve_workspace(workspace)
    ws.ensure_dirs()
    manifest = run_prepare(ws)
    console.print(f"prepared {ws.root}: {manifest}")


@app.command()
@friendly_errors
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query over the catalog's views.")],
    workspace: WorkspaceOpt = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="table (vertical when wider than the terminal) | vertical | csv | json",
        ),
    ] = "table",
    limit: Annotated[int, typer.Option(help="Rows shown in table and vertical format.")] = 50,
) -> None:
    """Run one SELECT over the read-only catalog, sandboxed to the lake."""
    import duckdb

    from cdp.catalog import connect_catalog
    from cdp.cli.render import QUERY_FORMATS
    from cdp.sandbox import check_select

    if format not in QUERY_FORMATS:
        raise CdpError(f"--format must be {', '.join(QUERY_FORMATS)}, not {format!r}")
    ws = resolve_workspace(workspace)
    con = connect_catalog(ws)
    try:
        check_select(con, query)
        cur = con.execute(query)
    except duckdb.PermissionException as e:
        raise CdpError(
            f"query refused: {str(e).splitlines()[0]} (cdp sql reads files under "
            f"{ws.lake_dir} only)"
        ) from None
    except duckdb.Error as e:
        raise CdpError(f"query failed: {str(e).splitlines()[0]}") from None
    from cdp.cli.render import print_query

    # A console made now measures the terminal (or $COLUMNS) as it is now.
    print_query(Console(), cur, format, limit)


@app.command()
@friendly_errors
def profile(
    query: Annotated[
        str, typer.Argument(help='An email, a phone, a unified id, or a name ("Ann Lee").')
    ],
    workspace: WorkspaceOpt = None,
    postcode: Annotated[
        str | None, typer.Option("--postcode", help="With a name: only people at this postcode.")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    """Show one person's 360 view: contact points, consents, insights, orders, cases."""
    from cdp.cli.profile_view import show_profiles

    show_profiles(query, workspace, postcode, format)


@app.command()
@friendly_errors
def serve(
    workspace: WorkspaceOpt = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; anything but loopback requires $CDP_SERVE_TOKEN."),
    ] = "127.0.0.1",
) -> None:
    """The agent console at / and the read-only profile API at /api/profiles?q=…"""
    from cdp.serve.server import required_token
    from cdp.serve.server import serve as run_server

    ws = resolve_workspace(workspace)
    required_token(host)  # refuse before printing anything
    from cdp.profile import store_exists

    if not store_exists(ws):
        err_console.print(
            "[yellow]warning:[/] no profile store yet: lookups answer 503 until `cdp run` finishes",
            highlight=False,
        )
    console.print(f"agent console on http://{host}:{port}/ (workspace {ws.root})", soft_wrap=True)
    run_server(ws, host=host, port=port)


@app.command()
@friendly_errors
def forget(
    subject: Annotated[
        str, typer.Argument(help="An email, a phone, a unified id or source:record_id.")
    ],
    workspace: WorkspaceOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be erased; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase one person from every copy: landing, lake, exports, logs; and keep them out."""
    from cdp.privacy.forget import forget as run_forget
    from cdp.run_lock import run_lock

    ws = resolve_workspace(workspace)
    with run_lock(ws, wait=False, busy_hint="try again once it has finished"):
        plan = run_forget(ws, subject, dry_run=True)
        console.print(
            f"{plan.unified_individuals} unified individual(s); {plan.rows_removed:,} row(s) "
            f"in {len(plan.files)} file(s) to erase"
        )
        for f in plan.files:
            console.print(f"  {f['path']}: {f['rows_removed']:,}")
        if dry_run:
            console.print("dry run: nothing was changed")
            return
        if not yes and not typer.confirm("erase these rows for good?", default=False):
            raise typer.Exit(1)
        done = run_forget(ws, subject)
    console.print(
        f"erased {done.rows_removed:,} row(s) from {len(done.files)} file(s); the person's "
        f"keys are on the suppression list (erasure {done.erasure_id}, logged in "
        f".cdp/erasure_log.jsonl)"
    )


def _mount_identity() -> None:
    """The identity commands live with identity resolution."""
    from cdp.identity import cli as identity_cli

    app.add_typer(identity_cli.app, name="identity", help="Train and inspect identity resolution.")
    app.command("explain")(friendly_errors(identity_cli.explain))


_mount_identity()


def main() -> None:  # pragma: no cover - console script entry
    app()
