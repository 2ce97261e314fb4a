"""Turn exceptions into one readable line and an exit code, never a raw traceback."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from cdp.errors import CdpError

err_console = Console(stderr=True)


def friendly_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CdpError as e:
            # escaped: a message may hold brackets ("pip install '.[spark]'")
            err_console.print(
                f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except typer.Exit:
            raise
        except Exception as e:
            if os.environ.get("CDP_DEBUG"):
                raise
            first = (str(e).strip().splitlines() or [""])[0]
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {escape(first)} "
                "(set CDP_DEBUG=1 for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper
