"""`kubeglobe gateway`: keep one HAProxy's cluster-proxy fast path in line with the platform.

Runs beside each gateway HAProxy (one per HAProxy, no leader: each keeps its own).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, run_until_signalled
from kubeglobe.files import write_atomic
from kubeglobe.gateway.config import render_gateway_config, seed
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.reverse import AgentPort, ServersPort
from kubeglobe.gateway.sync import GatewaySync, haproxy_check, make_runtime
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig


def gateway_command(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where HAProxy reads the gateway's maps and backends and has its "
                      "admin.sock and master.sock.")],
    haproxy_config: Annotated[Path | None, typer.Option(
        help="HAProxy's main configuration, to check new backends against (default: "
             "haproxy.cfg in --dir, which --platform-bind writes).")] = None,
    platform_bind: Annotated[str | None, typer.Option(
        help="HOST:PORT of the platform API on this replica (':PORT' for every address): "
             "the gateway then writes HAProxy's main configuration itself, ending TLS "
             "with --serving-pem.")] = None,
    init_only: Annotated[bool, typer.Option(
        "--init-only", help="Write HAProxy's files as a replica starts with them (the main "
                            "configuration, empty maps, the API servers' backend with no "
                            "replica), then exit: the gateway pod's init container. Needs "
                            "--platform-bind, --serving-pem and --replicas-ca.")] = False,
    kubeconfig: KubeconfigOpt = None,
    haproxy: Annotated[str, typer.Option(
        help="The HAProxy program (3.0 or later for --agent-bind), to check new backends "
             "with.")] = "haproxy",
    agent_bind: Annotated[str | None, typer.Option(
        help="HOST:PORT where registered clusters' agents attach and serve the gateway's "
             "requests (reverse HTTP); needs --servers-bind, --serving-pem, --agents-ca "
             "and --servers-ca.")] = None,
    serving_pem: Annotated[Path | None, typer.Option(
        help="The gateway's certificate then key (PEM), for the agent port.")] = None,
    agents_ca: Annotated[Path | None, typer.Option(
        help="The CA (PEM) that signs agents' certificates for the agent port.")] = None,
    servers_bind: Annotated[str | None, typer.Option(
        help="HOST:PORT where the API servers reach attached agents for the exec and "
             "attach they serve (TLS, client certificates of --servers-ca only).")] = None,
    servers_ca: Annotated[Path | None, typer.Option(
        help="The CA (PEM) that signs the API servers' client certificates for "
             "--servers-bind.")] = None,
    replicas_ca: Annotated[Path | None, typer.Option(
        help="The CA (PEM) of the API server replicas' serving certificates: the gateway "
             "then sends the platform API to the ready pods of the kubeglobe-server "
             "Service (its Endpoints), in a backend it writes itself.")] = None,
) -> None:
    """Serve cluster-proxy requests of imported clusters from HAProxy itself."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    files = GatewayFiles(directory)
    if platform_bind is not None:
        if serving_pem is None or replicas_ca is None:
            raise typer.BadParameter("--platform-bind needs --serving-pem and --replicas-ca",
                                     param_hint="--platform-bind")
        base = render_gateway_config(files=files, platform_bind=platform_bind,
                                     serving_pem=str(serving_pem))
        if init_only:
            with cli_errors(ValueError, OSError):
                seed(files, base_config=base, replicas_ca=replicas_ca)
            return
        write_atomic(files.base, base.encode(), mode=0o644)  # as the init container did
    elif init_only:
        raise typer.BadParameter("--init-only needs --platform-bind", param_hint="--init-only")
    haproxy_config = haproxy_config or files.base
    if not haproxy_config.is_file():
        raise typer.BadParameter(f"{haproxy_config} is not a file; pass HAProxy's main "
                                 "configuration or --platform-bind",
                                 param_hint="--haproxy-config")
    agent_port, servers_port = None, None
    if agent_bind is not None:
        if servers_bind is None or serving_pem is None or agents_ca is None or servers_ca is None:
            raise typer.BadParameter("--agent-bind needs --servers-bind, --serving-pem, "
                                     "--agents-ca and --servers-ca", param_hint="--agent-bind")
        for given, hint in ((serving_pem, "--serving-pem"), (agents_ca, "--agents-ca"),
                            (servers_ca, "--servers-ca")):
            if not given.is_file():
                raise typer.BadParameter(f"{given} is not a file", param_hint=hint)
        agent_port = AgentPort(bind=agent_bind, serving_pem=serving_pem, agents_ca=agents_ca)
        servers_port = ServersPort(bind=servers_bind, serving_pem=serving_pem,
                                   servers_ca=servers_ca)
    if replicas_ca is not None and not replicas_ca.is_file():
        raise typer.BadParameter(f"{replicas_ca} is not a file", param_hint="--replicas-ca")
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)

    async def main() -> None:
        sync = GatewaySync(hub=async_client(config), runtime=make_runtime(files), files=files,
                           validate=haproxy_check(haproxy_config, haproxy),
                           agent_port=agent_port, servers_port=servers_port,
                           servers_ca_file=replicas_ca)
        await sync.run()

    run_until_signalled(main())
