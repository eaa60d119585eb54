"""`kubeglobe install`: put the platform's CRDs and RBAC into a global cluster."""

from __future__ import annotations

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, console, out
from kubeglobe.hub.install import InstallError, install
from kubeglobe.kube.client import KubeconfigError, load_kubeconfig, sync_client


def install_command(kubeconfig: KubeconfigOpt = None) -> None:
    """Install (or update) CRDs, namespace and RBAC; prints the admin token once."""
    with cli_errors(InstallError, KubeconfigError):
        client = sync_client(load_kubeconfig(path=kubeconfig))
        with console.status("installing the platform's resources"):
            token = install(client)
    out.print("platform resources installed")
    if token is not None:
        out.print(f"bootstrap admin token (shown once): {token}")
