"""`kubeglobe dns`: the cluster DNS server (dns/server.py), in a pod of each cluster."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, run_until_signalled
from kubeglobe.dns.server import DnsServer, upstreams
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig


def dns_command(
    domain: Annotated[str, typer.Option(help="The cluster's DNS domain.")] = "cluster.local",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="UDP and TCP port to answer on.")] = 53,
    not_forward_to: Annotated[list[str] | None, typer.Option(
        help="An address of ours (the kube-dns Service's): never forward to it.")] = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Answer the cluster's Service names; forward other names to the node's resolvers."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)
    forward_to = upstreams(not_=set(not_forward_to or ()))

    async def serve() -> None:
        server = DnsServer(client=async_client(config), domain=domain, forward_to=forward_to)
        await server.run(host, port)

    run_until_signalled(serve())
