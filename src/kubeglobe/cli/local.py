"""`kubeglobe local`: the all-in-one environment of real clusters on this machine."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kubeglobe.cli.common import cli_errors, console, out
from kubeglobe.local import environment
from kubeglobe.local.binaries import BinariesError, build_binaries
from kubeglobe.local.cluster_health import cluster_objects
from kubeglobe.local.haproxy_build import HAPROXY_VERSION, HaproxyBuildError, build_haproxy
from kubeglobe.local.health import NotHealthy
from kubeglobe.local.images import ImageError, build_all_images, build_image
from kubeglobe.local.network import NetworkError
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.platform_image import build_platform_image
from kubeglobe.local.preflight import PreflightError
from kubeglobe.local.registry_image import registry_image
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.state import EnvironmentConflict
from kubeglobe.local.topology import GLOBAL

app = typer.Typer(no_args_is_help=True, help="Run real local clusters: a HA global and workloads.")
KNOWN_ERRORS = (
    EnvironmentConflict, environment.EnvironmentError_, BinariesError, HaproxyBuildError,
    ImageError, NetworkError, NotHealthy, PreflightError, ValueError, KeyError,
)


def default_state_dir() -> Path:
    return Path(
        os.environ.get("KUBEGLOBE_STATE_DIR", Path.home() / ".local/state/kubeglobe/local")
    )


StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the environment keeps its state "
                 "(default $KUBEGLOBE_STATE_DIR or ~/.local/state/kubeglobe/local)."),
]


@contextmanager
def _status_line(title: str) -> Iterator[environment.Report]:
    with console.status(title) as line:
        def report(message: str) -> None:
            line.update(f"{title}: {message[:110]}")
        yield report


@app.command()
def build() -> None:
    """Build (or find in the cache) the Kubernetes binaries, HAProxy and the node images."""
    with cli_errors(*KNOWN_ERRORS):
        with _status_line("kubernetes binaries") as report:
            binaries = build_binaries(progress=report, check=smoke_test)
        with _status_line(f"haproxy {HAPROXY_VERSION}") as report:
            haproxy = build_haproxy(progress=report)
        with _status_line("images") as report:  # the platform image holds that HAProxy
            images = [*build_all_images(), build_platform_image(progress=report)]
            registry = registry_image()
            images.append((registry, build_image(registry)))
    out.print(f"binaries: {binaries.dir}")
    out.print(f"haproxy: {haproxy}")
    for spec, path in images:
        out.print(f"image {spec.name}: {path}")


@app.command()
def up(
    workload_clusters: Annotated[int | None, typer.Option(
        "--workload-clusters", "-n", help="How many workload clusters (default 2).")] = None,
    slot: Annotated[int | None, typer.Option(
        help="Network slot 0..49 (bridge kgbrN, 10.250.N.0/24); picked if unset.")] = None,
    port_base: Annotated[int | None, typer.Option(
        help="First host port (default 20000 + 200*slot).")] = None,
    global_workers: Annotated[int | None, typer.Option(
        help="Worker node hosts of global, beside its 3 control-plane ones (default 1).",
    )] = None,
    nodes: Annotated[int | None, typer.Option(
        help="Node hosts of each workload cluster (default 1).")] = None,
    state_dir: StateDir | None = None,
) -> None:
    """Start the environment (or report it if it already runs; recover it after a crash)."""
    where = state_dir or default_state_dir()
    with cli_errors(*KNOWN_ERRORS), _status_line("kubeglobe local up") as report:
        plan = environment.up(
            state_dir=where, workload_clusters=workload_clusters, slot=slot,
            port_base=port_base, global_workers=global_workers, workload_nodes=nodes,
            report=report,
        )
    _print_status(where, as_json=False)
    out.print(f"\nstate: {plan.state_dir}")
    for cluster in plan.clusters:
        out.print(f"kubeconfig {cluster.name}: {environment.admin_kubeconfig(plan, cluster.name)}")
    g = plan.cluster(GLOBAL)
    ca = plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    token_file = admin_token_file(plan)
    token = token_file.read_text().strip() if token_file.exists() else "(see platform/admin.token)"
    out.print(f"\nplatform API: {api_url(plan, g)}  (CA: {ca})")
    out.print(f"admin token: {token}")
    out.print(f"log in: kubeglobe login --server {api_url(plan, g)} --token {token} "
              f"--ca-file {ca}", soft_wrap=True)


@app.command()
def status(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json")] = "table",
    state_dir: StateDir | None = None,
) -> None:
    """List every component with its PID, port and health, then every node and the
    platform's pods with theirs; exit 1 if any is unhealthy."""
    if output not in ("table", "json"):
        console.print(f"[bold red]error:[/] unknown output {output!r}; use table or json")
        raise typer.Exit(2)
    with cli_errors(*KNOWN_ERRORS):
        healthy = _print_status(state_dir or default_state_dir(), as_json=output == "json")
    if not healthy:
        raise typer.Exit(1)


def _health(text: str) -> str:
    return f"[{'green' if text == 'ok' else 'red'}]{text}[/]"


def _print_status(state_dir: Path, *, as_json: bool) -> bool:
    plan, rows = environment.status(state_dir=state_dir)
    objects = [o for c in plan.clusters
               for o in cluster_objects(c.name, environment.admin_kubeconfig(plan, c.name))]
    healthy = (all(r.health == "ok" for r in rows)
               and all(o.health == "ok" for o in objects))
    if as_json:
        out.print_json(json.dumps({
            "stateDir": str(plan.state_dir), "slot": plan.slot, "portBase": plan.port_base,
            "healthy": healthy, "components": [asdict(r) for r in rows],
            "objects": [asdict(o) for o in objects],
        }))
        return healthy
    table = Table(title=f"KubeGlobe local environment (slot {plan.slot})")
    for column in ("CLUSTER", "COMPONENT", "PID", "PORT", "HEALTH"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.cluster, r.key.split("/", 1)[1], str(r.pid or "-"), str(r.port or "-"),
                      _health(r.health))
    out.print(table)
    table = Table(title="nodes and the platform's pods")
    for column in ("CLUSTER", "KIND", "NAME", "NODE", "HEALTH"):
        table.add_column(column, overflow="fold")  # a pod's name whole, on a narrow terminal
    for o in objects:
        table.add_row(o.cluster, o.kind, o.name, o.node or "-", _health(o.health))
    out.print(table)
    return healthy


@app.command()
def kubeconfig(
    cluster: Annotated[str, typer.Argument(help="global, workload-1, ...")],
    state_dir: StateDir | None = None,
) -> None:
    """Print the path of CLUSTER's admin kubeconfig."""
    with cli_errors(*KNOWN_ERRORS):
        plan = environment.existing_plan(state_dir or default_state_dir())
        path = environment.admin_kubeconfig(plan, cluster)
    out.print(str(path), soft_wrap=True)


@app.command()
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the state (etcd data, PKI).")] = False,
    state_dir: StateDir | None = None,
) -> None:
    """Stop everything the environment started, unmount its mounts, remove its network."""
    with cli_errors(*KNOWN_ERRORS), _status_line("kubeglobe local down") as report:
        stopped = environment.down(
            state_dir=state_dir or default_state_dir(), purge=purge, report=report
        )
    out.print(f"stopped {stopped} processes")
