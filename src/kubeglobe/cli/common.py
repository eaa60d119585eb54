"""Shared CLI pieces: consoles, the error-to-exit-status mapping, kubeconfig options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option("--kubeconfig", help="Kubeconfig of the global cluster (default $KUBECONFIG)."),
]


@contextmanager
def cli_errors(*known: type[BaseException]) -> Iterator[None]:
    """Print known errors as one red line and exit 2; anything else is a bug and raises."""
    try:
        yield
    except known as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        console.print(f"[bold red]error:[/] {message}")
        raise typer.Exit(2) from None
