"""Cluster DNS in each cluster of the environment, as kubeadm installs CoreDNS.

Debian has no CoreDNS, so the DNS server is the platform's own (`kubeglobe dns`, in the
platform image; see dns/). `apply_cluster_dns` applies its objects (dns/manifests.py)
with server-side apply, so a second `up` changes nothing; `wait_cluster_dns` waits until the
Deployment has rolled out: every replica of the current version available, no old
one left.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment

from kubeglobe.api.meta import FIELD_MANAGER
from kubeglobe.dns.manifests import NAME, NAMESPACE, dns_manifests
from kubeglobe.kube.client import load_kubeconfig, sync_client
from kubeglobe.local.health import wait_until
from kubeglobe.local.topology import ClusterPlan

READY_SECONDS = 120.0
# Kubernetes 1.20 serves PodDisruptionBudgets as policy/v1beta1 only (policy/v1 is 1.21),
# which lightkube's models no longer carry: known to it as a generic resource.
create_namespaced_resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")


def apply_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path, image: str) -> None:
    with _client(kubeconfig) as client:
        for manifest in dns_manifests(image=image, cluster_ip=cluster.dns_service_ip):
            client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)


def wait_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path) -> None:
    """Until the Deployment has rolled out (NotHealthy after READY_SECONDS)."""
    with _client(kubeconfig) as client:
        wait_until(f"{cluster.name}: {NAMESPACE}/{NAME}", lambda: _rolled_out(client),
                   timeout=READY_SECONDS, interval=1.0,
                   log=f"`kubectl -n {NAMESPACE} describe deployment {NAME}` with "
                       f"{kubeconfig}")


def _rolled_out(client: Client) -> str:
    """"ok" once every replica of the current version is available and no old one is
    left (old ones count as available while a rollout goes), else how far it is."""
    found = client.get(Deployment, NAME, namespace=NAMESPACE)
    want = found.spec.replicas if found.spec and found.spec.replicas is not None else 1
    generation = (found.metadata.generation if found.metadata else None) or 0
    status = found.status
    have = (status.availableReplicas or 0) if status else 0
    if (status is not None and (status.observedGeneration or 0) >= generation
            and status.updatedReplicas == want and status.replicas == want and have >= want):
        return "ok"
    return f"{have} of {want} replicas of the current version available"


@contextmanager
def _client(kubeconfig: Path) -> Iterator[Client]:
    client = sync_client(load_kubeconfig(path=kubeconfig))
    try:
        yield client
    finally:
        client.close()
