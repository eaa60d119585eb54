"""`kubeglobe server`: one replica of the platform API server (uvicorn, TLS)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import uvloop

from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.cli.common import KubeconfigOpt, cli_errors
from kubeglobe.hub.agent_certificates import load_agents_ca
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig
from kubeglobe.kube.upgrade import Endpoint
from kubeglobe.server.app import ServerSettings, create_app
from kubeglobe.server.upgrade import upgrade_protocol


def server_command(
    kubeconfig: KubeconfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
    tls_cert: Annotated[Path | None, typer.Option(help="Serving certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Serving key (PEM).")] = None,
    advertise_url: Annotated[str | None, typer.Option(
        help="How agents reach this replica, published in its Lease "
             "(default https://HOST:PORT).")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="How agents and people reach the platform (its load balancer).")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        help="CA of the serving certificates (handed to agents) and of the gateway's.")] = None,
    agent_image: Annotated[str | None, typer.Option(
        help="Image the agent manifests use.")] = None,
    agent_gateway: Annotated[str | None, typer.Option(
        help="HOST:PORT of the gateway's agent port, where registered clusters' agents "
             "attach and serve the gateway's requests (reverse HTTP); needs --agents-ca-cert "
             "and --agents-ca-key.")] = None,
    agents_ca_cert: Annotated[Path | None, typer.Option(
        help="CA certificate (PEM) that signs agents' certificates for the agent port.")] = None,
    agents_ca_key: Annotated[Path | None, typer.Option(
        help="Its private key (PEM).")] = None,
    servers_gateway: Annotated[str | None, typer.Option(
        help="HOST:PORT of the gateway's port for the servers, through which registered "
             "clusters' exec and attach reach attached agents (the tunnel serves when they "
             "are not); needs --servers-gateway-cert and --servers-gateway-key, and "
             "--ca-file to verify the gateway, whose certificate must carry the DNS name "
             "kubeglobe-platform.")] = None,
    servers_gateway_cert: Annotated[Path | None, typer.Option(
        help="This server's client certificate (PEM) for --servers-gateway.")] = None,
    servers_gateway_key: Annotated[Path | None, typer.Option(
        help="Its private key (PEM).")] = None,
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
    agents_via = None
    if servers_gateway is not None:
        agents_via = _gateway_endpoint(servers_gateway, servers_gateway_cert,
                                       servers_gateway_key, ca_file)
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    own = advertise_url or f"https://{host}:{port}"
    settings = ServerSettings(
        advertise_url=own, public_url=public_url or own,
        ca_file=str(ca_file) if ca_file else None,
        agent_image=agent_image or ServerSettings.agent_image,
        agent_gateway=agent_gateway, agents_ca=agents_ca, agents_via_gateway=agents_via,
    )
    app = create_app(hub=async_client(config), settings=settings)
    http = upgrade_protocol(app.state.streams)
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level="warning", http=http,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve())


def _gateway_endpoint(address: str, cert: Path | None, key: Path | None,
                      ca_file: Path | None) -> Endpoint:
    """The gateway's port for the servers, as this server dials it (mutual TLS)."""
    if cert is None or key is None or ca_file is None:
        raise typer.BadParameter("--servers-gateway needs --servers-gateway-cert, "
                                 "--servers-gateway-key and --ca-file",
                                 param_hint="--servers-gateway")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise typer.BadParameter(f"{address!r} is not HOST:PORT", param_hint="--servers-gateway")
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise typer.BadParameter(f"cannot load {cert} with {key}: {e}",
                                 param_hint="--servers-gateway-cert") from e
    return Endpoint(host=host, port=int(port), ssl=context, tls_name=PLATFORM_TLS_NAME)
