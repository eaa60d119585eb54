"""Cluster DNS in each cluster of the environment, as kubeadm installs CoreDNS.

Debian has no CoreDNS, so the DNS server is the platform's own (`kubeglobe dns`, in the
platform image; see dns/). `apply_cluster_dns` applies its objects (dns/manifests.py)
with server-side apply, so a second `up` changes nothing; `wait_cluster_dns` waits until the
Deployment has rolled out: every replica of the current version available, no old
one left.
"""

from __future__ import annotations

from pathlib import Path

from lightkube import Client
from lightkube.resources.apps_v1 import Deployment

from kubeglobe.dns.manifests import NAME, NAMESPACE, dns_manifests
from kubeglobe.kube.client import load_kubeconfig, sync_client
from kubeglobe.local.apply import apply_all
from kubeglobe.local.health import wait_until
from kubeglobe.local.topology import ClusterPlan

READY_SECONDS = 120.0


def apply_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path, image: str) -> None:
    apply_all(kubeconfig, dns_manifests(image=image, cluster_ip=cluster.dns_service_ip))


def wait_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path) -> None:
    """Until the Deployment has rolled out (NotHealthy after READY_SECONDS)."""
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
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

