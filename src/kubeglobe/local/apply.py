"""Server-side apply of rendered objects to one cluster of the environment, and the
wait for a Deployment or DaemonSet to roll out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet, Deployment

from kubeglobe.api.meta import FIELD_MANAGER
from kubeglobe.kube.client import load_kubeconfig, sync_client
from kubeglobe.local.health import wait_until

# Kubernetes 1.20 serves PodDisruptionBudgets as policy/v1beta1 only (policy/v1 is 1.21),
# which lightkube's models no longer carry: known to it as a generic resource.
create_namespaced_resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")


def apply_all(kubeconfig: Path, manifests: list[dict[str, Any]]) -> None:
    """Apply each object in order (a second call changes nothing)."""
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
        for manifest in manifests:
            client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)


def wait_rolled_out(kubeconfig: Path, *, name: str, namespace: str, what: str,
                    timeout: float = 120.0, daemonset: bool = False) -> None:
    """Until Deployment (or DaemonSet) `name` has rolled out (NotHealthy after `timeout`)."""
    check = _daemonset_rolled_out if daemonset else _rolled_out
    kind = "daemonset" if daemonset else "deployment"
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
        wait_until(what, lambda: check(client, name, namespace), timeout=timeout,
                   interval=1.0, log=f"`kubectl -n {namespace} describe {kind} {name}` "
                                     f"with {kubeconfig}")


def _daemonset_rolled_out(client: Client, name: str, namespace: str) -> str:
    """"ok" once every node it should run on has an available pod of the current version."""
    found = client.get(DaemonSet, name, namespace=namespace)
    generation = (found.metadata.generation if found.metadata else None) or 0
    status = found.status
    if status is None:
        return "no status yet"
    want = status.desiredNumberScheduled
    have = status.numberAvailable or 0
    if ((status.observedGeneration or 0) >= generation and want > 0
            and (status.updatedNumberScheduled or 0) == want and have >= want):
        return "ok"
    return f"{have} of {want} nodes with an available pod of the current version"


def _rolled_out(client: Client, name: str, namespace: str) -> str:
    """"ok" once every replica of the current version is available and no old one is
    left (old ones count as available while a rollout goes), else how far it is."""
    found = client.get(Deployment, name, namespace=namespace)
    want = found.spec.replicas if found.spec and found.spec.replicas is not None else 1
    generation = (found.metadata.generation if found.metadata else None) or 0
    status = found.status
    have = (status.availableReplicas or 0) if status else 0
    if (status is not None and (status.observedGeneration or 0) >= generation
            and status.updatedReplicas == want and status.replicas == want and have >= want):
        return "ok"
    return f"{have} of {want} replicas of the current version available"
