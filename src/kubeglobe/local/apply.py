"""Server-side apply of rendered objects to one cluster of the environment, and the
wait for a Deployment or DaemonSet to roll out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightkube import codecs

from kubeglobe.api.meta import FIELD_MANAGER
from kubeglobe.deploy.apply import rollout  # also makes PDBs known to lightkube
from kubeglobe.kube.client import load_kubeconfig, sync_client
from kubeglobe.local.health import wait_until


def apply_all(kubeconfig: Path, manifests: list[dict[str, Any]]) -> None:
    """Apply each object in order (a second call changes nothing)."""
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
        for manifest in manifests:
            client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)


def wait_rolled_out(kubeconfig: Path, *, name: str, namespace: str, what: str,
                    timeout: float = 120.0, daemonset: bool = False) -> None:
    """Until Deployment (or DaemonSet) `name` has rolled out (NotHealthy after `timeout`)."""
    kind = "daemonset" if daemonset else "deployment"
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
        wait_until(what, lambda: rollout(client, kind, name, namespace), timeout=timeout,
                   interval=1.0, log=f"`kubectl -n {namespace} describe {kind} {name}` "
                                     f"with {kubeconfig}")
