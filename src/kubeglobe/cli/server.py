"""`kubeglobe server`: one replica of the platform API server (uvicorn, TLS)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import uvloop

from kubeglobe.cli.common import KubeconfigOpt, cli_errors
from kubeglobe.hub.agent_certificates import load_agents_ca
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig
from kubeglobe.server.app import ServerSettings, create_app
from kubeglobe.server.upgrade import upgrade_protocol


def server_command(
    kubeconfig: KubeconfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
    tls_cert: Annotated[Path | None, typer.Option(help="Serving certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Serving key (PEM).")] = None,
    advertise_url: Annotated[str | None, typer.Option(
        help="How other replicas reach this one (default https://HOST:PORT).")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="How agents and people reach the platform (its load balancer).")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        help="CA of the serving certificates, handed to agents and used for peers.")] = None,
    agent_image: Annotated[str | None, typer.Option(
        help="Image the agent manifests use.")] = None,
    gateway_socket: Annotated[Path | None, typer.Option(
        help="Also serve plain HTTP on this UNIX socket, for a gateway on the same host "
             "(its directory should be private to the gateway's user).")] = None,
    cluster_sockets: Annotated[Path | None, typer.Option(
        help="Open a UNIX socket per registered cluster here while holding its tunnel, "
             "for the gateway on the same host to send that cluster's requests as bytes "
             "(made private, 0700).")] = None,
    agent_gateway: Annotated[str | None, typer.Option(
        help="HOST:PORT of the gateway's agent port, where registered clusters' agents "
             "attach and serve the gateway's requests (reverse HTTP); needs --agents-ca-cert "
             "and --agents-ca-key.")] = None,
    agents_ca_cert: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) that signs agents' certificates for the agent port.")] = None,
    agents_ca_key: Annotated[Path | None, typer.Option(
        help="Its private key (PEM).")] = None,
    agents_socket: Annotated[Path | None, typer.Option(
        help="The gateway's UNIX socket through which registered clusters' exec and "
             "attach reach attached agents (the tunnel serves when they are not).")] = None,
) -> None:
    """Serve the platform API; TLS when --tls-cert and --tls-key are given."""
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("pass both --tls-cert and --tls-key, or neither")
    if agent_gateway is not None and (agents_ca_cert is None or agents_ca_key is None):
        raise typer.BadParameter("--agent-gateway needs --agents-ca-cert and --agents-ca-key "
                                 "to sign the agents' certificates", param_hint="--agent-gateway")
    agents_ca = None
    if agents_ca_cert is not None and agents_ca_key is not None:
        try:
            agents_ca = load_agents_ca(cert=agents_ca_cert, key=agents_ca_key)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--agents-ca-cert") from e
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    own = advertise_url or f"https://{host}:{port}"
    settings = ServerSettings(
        advertise_url=own, public_url=public_url or own,
        ca_file=str(ca_file) if ca_file else None,
        agent_image=agent_image or ServerSettings.agent_image,
        cluster_sockets=cluster_sockets, agent_gateway=agent_gateway, agents_ca=agents_ca,
        agents_socket=str(agents_socket) if agents_socket else None,
    )
    app = create_app(hub=async_client(config), settings=settings)
    http = upgrade_protocol(app.state.streams)
    configs = [uvicorn.Config(app, host=host, port=port, log_level="warning", http=http,
                              ssl_certfile=str(tls_cert) if tls_cert else None,
                              ssl_keyfile=str(tls_key) if tls_key else None)]
    if gateway_socket is not None:
        # The same app for the gateway next door: no TLS to pay for twice on one host.
        # Every request is still authenticated; the socket only saves the encryption.
        configs.append(uvicorn.Config(app, uds=str(gateway_socket), log_level="warning",
                                      http=http, lifespan="off"))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(configs))


async def _serve(configs: list[uvicorn.Config]) -> None:
    """Start the first server (it runs the app's lifespan), then the others.

    Each server handles SIGTERM/SIGINT itself (a graceful shutdown) and passes the
    signal on to the one started before it, so all of them stop in turn.
    """
    first, *others = [uvicorn.Server(c) for c in configs]
    tasks = [asyncio.create_task(first.serve())]
    while not first.started and not tasks[0].done():
        await asyncio.sleep(0.05)
    tasks += [asyncio.create_task(server.serve()) for server in others]
    await asyncio.gather(*tasks)
