"""`kubeglobe cluster ...`: import, list, get and unregister workload clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kubeglobe.cli.common import cli_errors, out
from kubeglobe.cli.config import CliError
from kubeglobe.cli.views import Output, View, call, call_and_show, client, emit
from kubeglobe.files import write_atomic

app = typer.Typer(no_args_is_help=True, help="Workload clusters managed by the hub.")


def _row(c: dict[str, Any]) -> list[Any]:
    s = c["status"]
    return [c["name"], c["spec"]["mode"], s["phase"], s.get("kubernetesVersion"),
            s.get("nodeCount"), s.get("readyNodeCount"), s.get("lastHeartbeatTime")]


CLUSTERS = View(("NAME", "MODE", "PHASE", "VERSION", "NODES", "READY", "HEARTBEAT"), _row)


@app.command("import")
def import_(
    name: str,
    kubeconfig: Annotated[Path, typer.Option(help="The cluster's kubeconfig file.")],
    display_name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    output: Output = "table",
) -> None:
    """Import a cluster: the hub dials it with this kubeconfig."""
    with cli_errors(CliError, OSError):
        body = {"name": name, "kubeconfig": kubeconfig.read_text(), "displayName": display_name}
        created = client().request("POST", "/api/v1/clusters", json=body)
        if not emit(created, output):
            out.print(f"cluster {name} imported; it turns Ready at its first heartbeat")


@app.command("list")
def list_(output: Output = "table") -> None:
    """List clusters with their phase, version and nodes."""
    call_and_show(CLUSTERS, "GET", "/api/v1/clusters", output, listed=True)


@app.command("get")
def get(name: str, output: Output = "table") -> None:
    """Show one cluster."""
    call_and_show(CLUSTERS, "GET", f"/api/v1/clusters/{name}", output)


@app.command("unregister")
def unregister(name: str) -> None:
    """Stop managing a cluster: the platform removes what it created there."""
    out.print(call("DELETE", f"/api/v1/clusters/{name}")["status"])


@app.command("register")
def register(
    name: str,
    manifest_out: Annotated[Path | None, typer.Option(
        help="Write the agent manifest here (else it is printed).")] = None,
    new_token: Annotated[bool, typer.Option(
        help="Issue a new bootstrap token for an existing registered cluster.")] = False,
    display_name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    output: Output = "table",
) -> None:
    """Register a cluster: prints its one-time bootstrap token and the agent manifest."""
    with cli_errors(CliError, OSError):
        api = client()
        if new_token:
            answer = api.request("POST", f"/api/v1/clusters/{name}/bootstrap-token")
        else:
            answer = api.request("POST", "/api/v1/clusters", json={
                "name": name, "mode": "register", "displayName": display_name})
        if emit(answer, output):
            return
        if manifest_out is not None:
            write_atomic(manifest_out, answer["manifest"].encode())  # holds the token
            out.print(f"agent manifest written to {manifest_out}")
        else:
            typer.echo(answer["manifest"], nl=False)
        out.print(f"bootstrap token (one use, 24 h): {answer['bootstrapToken']}")
        out.print(f"start the agent: {answer['command']}", soft_wrap=True)
