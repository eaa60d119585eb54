"""`kubeglobe install`: put the platform's CRDs and RBAC into a global cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, console, out
from kubeglobe.hub.install import WEBHOOK_PATH, InstallError, WebhookEndpoint, install
from kubeglobe.kube.client import KubeconfigError, load_kubeconfig, sync_client


def install_command(
    kubeconfig: KubeconfigOpt = None,
    platform_url: Annotated[str | None, typer.Option(
        help="The platform API as the global cluster's apiservers reach it; installs the "
             "tenancy admission webhook.")] = None,
    platform_ca: Annotated[Path | None, typer.Option(
        help="CA of the platform API's serving certificate (with --platform-url).")] = None,
) -> None:
    """Install (or update) CRDs, namespace, RBAC and webhook; prints the admin token once."""
    with cli_errors(InstallError, KubeconfigError, OSError):
        webhook = None
        if platform_url is not None:
            if platform_ca is None:
                raise InstallError("--platform-url needs --platform-ca (the CA that signed the "
                                   "platform API's certificate)")
            webhook = WebhookEndpoint(url=platform_url.rstrip("/") + WEBHOOK_PATH,
                                      ca_pem=platform_ca.read_text())
        client = sync_client(load_kubeconfig(path=kubeconfig))
        with console.status("installing the platform's resources"):
            token = install(client, webhook)
    out.print("platform resources installed")
    if token is not None:
        out.print(f"bootstrap admin token (shown once): {token}")
