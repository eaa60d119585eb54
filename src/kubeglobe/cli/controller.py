"""`kubeglobe controller`: one replica of the leader-elected Cluster controller."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from prometheus_client import start_http_server

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, run_until_signalled
from kubeglobe.hub.controller_process import run_controller
from kubeglobe.kube.client import KubeconfigError, load_kubeconfig


def controller_command(
    kubeconfig: KubeconfigOpt = None,
    heartbeat_seconds: Annotated[float, typer.Option(help="Seconds between probes.")] = 10.0,
    lease_seconds: Annotated[int, typer.Option(help="Leader lease duration.")] = 10,
    platform_url: Annotated[str | None, typer.Option(
        help="The platform API, through which registered clusters are reached.")] = None,
    platform_ca: Annotated[str | None, typer.Option(help="CA of the platform API.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics (failures counted, the process's own) on this port; its "
             "answer is the replica's liveness, leader or standby.")] = None,
) -> None:
    """Run a controller replica; exits 1 when it loses leadership."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("kopf", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)
    if metrics_port is not None:
        start_http_server(metrics_port)  # a thread of its own: answers while kopf is busy
    code = run_until_signalled(run_controller(
        config=config, heartbeat_seconds=heartbeat_seconds, lease_seconds=lease_seconds,
        platform_url=platform_url, platform_ca=platform_ca))
    raise typer.Exit(0 if code is None else code)
