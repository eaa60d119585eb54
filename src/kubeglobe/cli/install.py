"""`kubeglobe install`: put the platform into a global cluster: its CRDs and RBAC, and
with `--image` the whole platform (gateway, controller, API servers) as pods."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, console, out
from kubeglobe.deploy.install import install_platform
from kubeglobe.hub.install import WEBHOOK_PATH, InstallError, WebhookEndpoint, install
from kubeglobe.kube.client import KUBE_ERRORS, KubeconfigError, load_kubeconfig, sync_client


def _selector(text: str) -> dict[str, str]:
    """`key=value,key2=` as a node selector; InstallError naming what is wrong."""
    found = {}
    for term in (t.strip() for t in text.split(",") if t.strip()):
        key, equals, value = term.partition("=")
        if not equals or not key:
            raise InstallError(f"--gateway-nodes term {term!r} is not KEY=VALUE (a node "
                               "label; VALUE may be empty, as in "
                               "node-role.kubernetes.io/control-plane=)")
        found[key] = value
    if not found:
        raise InstallError("--gateway-nodes is empty; give at least one KEY=VALUE")
    return found


def install_command(
    kubeconfig: KubeconfigOpt = None,
    image: Annotated[str | None, typer.Option(
        help="The platform image: also install the whole platform as pods (the gateway on "
             "--gateway-nodes, two controllers, two API servers) reached at --endpoint; "
             "the nodes must be able to pull it.")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="With --image: the address clients and agents reach the gateway at (one of "
             "its nodes, or a load balancer in front of them); in its certificate.")] = None,
    pki_dir: Annotated[Path, typer.Option(
        help="With --image: where the platform's CA and certificates are kept (made once, "
             "reused on every later install; keep it).")] = Path("kubeglobe-pki"),
    gateway_nodes: Annotated[str, typer.Option(
        help="With --image: the nodes the gateway runs on, one replica each, in their host "
             "network (a node selector, KEY=VALUE[,...]).")]
        = "node-role.kubernetes.io/control-plane=",
    platform_port: Annotated[int, typer.Option(help="The gateway's platform API port.")] = 8443,
    agent_port: Annotated[int, typer.Option(help="The gateway's port for agents.")] = 8444,
    servers_port: Annotated[int, typer.Option(
        help="The gateway's port for the API servers' streams to agents.")] = 8445,
    platform_url: Annotated[str | None, typer.Option(
        help="Without --image: the platform API as the global cluster's apiservers reach "
             "it; installs the tenancy admission webhook.")] = None,
    platform_ca: Annotated[Path | None, typer.Option(
        help="CA of the platform API's serving certificate (with --platform-url).")] = None,
) -> None:
    """Install (or update) the platform; prints the bootstrap admin token once."""
    with cli_errors(InstallError, KubeconfigError, OSError, *KUBE_ERRORS):
        client = sync_client(load_kubeconfig(path=kubeconfig))
        if image is not None:
            if endpoint is None:
                raise InstallError("--image needs --endpoint: the address (a gateway node's, "
                                   "or a load balancer's) where the platform is reached")
            if platform_url is not None:
                raise InstallError("--platform-url is for installing CRDs only; with --image "
                                   "the platform's URL comes from --endpoint")
            with console.status("installing the platform") as status:
                done = install_platform(
                    client, image=image, endpoint=endpoint, pki_dir=pki_dir,
                    ports=(platform_port, agent_port, servers_port),
                    gateway_nodes=_selector(gateway_nodes),
                    report=lambda what: status.update(f"installing the platform: {what}"))
            out.print(f"platform installed: {done.url} (CA: {done.ca})")
            token = done.token
        else:
            webhook = None
            if platform_url is not None:
                if platform_ca is None:
                    raise InstallError("--platform-url needs --platform-ca (the CA that "
                                       "signed the platform API's certificate)")
                webhook = WebhookEndpoint(url=platform_url.rstrip("/") + WEBHOOK_PATH,
                                          ca_pem=platform_ca.read_text())
            with console.status("installing the platform's resources"):
                token = install(client, webhook)
            out.print("platform resources installed")
    if token is not None:
        out.print(f"bootstrap admin token (shown once): {token}")
