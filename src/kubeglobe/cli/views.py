"""What every API-backed CLI command shares: the logged-in client and the output forms
(a table for people, `-o json|yaml` for scripts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from kubeglobe.cli.common import cli_errors, out
from kubeglobe.cli.config import ApiClient, CliError, load_config

Output = Annotated[str, typer.Option("--output", "-o", help="table, json or yaml")]


def client() -> ApiClient:
    return ApiClient(load_config())


def emit(data: Any, output: str) -> bool:
    """Print `data` as json or yaml and return True; False when a table is wanted."""
    if output == "json":
        out.print_json(json.dumps(data))
    elif output == "yaml":
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
    elif output != "table":
        raise CliError(f"unknown output {output!r}; use table, json or yaml")
    else:
        return False
    return True


def show(data: Any, output: str, columns: Sequence[str],
         row: Callable[[dict[str, Any]], Sequence[Any]]) -> None:
    """Print one item or a list of them, as a table unless json or yaml is asked for."""
    if emit(data, output):
        return
    items = data if isinstance(data, list) else [data]
    table = Table(box=None)
    for column in columns:
        table.add_column(column)
    for item in items:
        table.add_row(*("-" if v is None or v == "" else str(v) for v in row(item)))
    out.print(table)


@dataclass(frozen=True)
class View:
    """How one kind of resource prints as a table: its columns and each item's row."""

    columns: Sequence[str]
    row: Callable[[dict[str, Any]], Sequence[Any]]


def call(method: str, path: str, **kwargs: Any) -> Any:
    """One request to the API as the saved login; a CliError is printed and exits 2."""
    with cli_errors(CliError):
        return client().request(method, path, **kwargs)


def call_and_show(view: View, method: str, path: str, output: str, *, listed: bool = False,
                  **kwargs: Any) -> None:
    """One request to the API, its answer (a list's `items` if `listed`) shown as `view`."""
    with cli_errors(CliError):
        answer = client().request(method, path, **kwargs)
        show(answer["items"] if listed else answer, output, view.columns, view.row)
