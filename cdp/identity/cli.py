"""`cdp identity ...` and `cdp explain`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cdp.cli.errors import friendly_errors
from cdp.workspace import resolve_workspace

app = typer.Typer(no_args_is_help=True)
console = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", envvar="CDP_WORKSPACE", help="Workspace folder.", show_default=False
    ),
]


@app.command()
@friendly_errors
def train(workspace: WorkspaceOpt = None) -> None:
    """Train the identity model (EM, u from random sampling) and save it as reviewable JSON."""
    from cdp.identity.resolve import train as run_train

    ws = resolve_workspace(workspace)
    with console.status("training the identity model"):
        result = run_train(ws)
    console.print(
        f"trained on {result.records:,} records in {result.seconds:.1f}s -> {result.path}"
    )


def explain(
    unified_id: Annotated[str, typer.Argument(help="A unified_individual_id.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Why these records are one person: each link's evidence, and the near misses kept out."""
    from cdp.identity.explain import explain as run_explain
    from cdp.identity.explain import render_explanation

    ws = resolve_workspace(workspace)
    console.print(render_explanation(run_explain(ws, unified_id)))
