"""Turn exceptions into one readable line and an exit code, never a raw traceback."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from cdp.errors import CdpError

err_console = Console(stderr=True)


def report(e: BaseException) -> int:
    """One line on stderr for the exception; returns the exit code (re-raises it under
    CDP_DEBUG=1 when it is not a CdpError, for the traceback)."""
    if isinstance(e, CdpError):
        # escaped: a message may hold brackets ("pip install '.[spark]'")
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 1
    if isinstance(e, KeyboardInterrupt):
        err_console.print("[yellow]interrupted[/]")
        return 130
    if os.environ.get("CDP_DEBUG"):
        raise e
    first = (str(e).strip().splitlines() or [""])[0]
    err_console.print(
        f"[bold red]internal error:[/] {type(e).__name__}: {escape(first)} "
        "(set CDP_DEBUG=1 for the traceback)",
        highlight=False,
        soft_wrap=True,
    )
    return 2


def friendly_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import typer  # loaded by the command line already; not by `cdp profile`'s fast path

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as e:
            raise typer.Exit(report(e)) from None

    return wrapper
