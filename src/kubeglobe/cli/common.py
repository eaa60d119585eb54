"""Shared CLI pieces: consoles, the error-to-exit-status mapping, kubeconfig options."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvloop
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
        console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
        raise typer.Exit(2) from None


T = TypeVar("T")


def run_until_signalled(main: Coroutine[Any, Any, T]) -> T | None:
    """Run `main`; SIGTERM or SIGINT cancel it cleanly (and work as PID 1 in a container,
    where the kernel would otherwise ignore SIGTERM)."""

    async def runner() -> T | None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
        return loop_runner.run(runner())
