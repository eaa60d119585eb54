"""Cluster DNS in each cluster of the environment, as kubeadm installs CoreDNS.

Debian has no CoreDNS, so the DNS server is the platform's own (`kubeglobe dns`, in the
platform image; see dns/). `apply_cluster_dns` applies its objects (dns/manifests.py)
with server-side apply, so a second `up` changes nothing; `wait_cluster_dns` waits until the
Deployment has rolled out: every replica of the current version available, no old
one left.
"""

from __future__ import annotations

from pathlib import Path

from kubeglobe.dns.manifests import NAME, NAMESPACE, dns_manifests
from kubeglobe.local.apply import apply_all, wait_rolled_out
from kubeglobe.local.topology import ClusterPlan

READY_SECONDS = 120.0


def apply_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path, image: str) -> None:
    """Two replicas where there are two nodes to spread them over; a one-node cluster's
    second replica would only double its memory, not its availability."""
    replicas = min(2, len(cluster.nodes))
    apply_all(kubeconfig, dns_manifests(image=image, cluster_ip=cluster.dns_service_ip,
                                        replicas=replicas))


def wait_cluster_dns(*, cluster: ClusterPlan, kubeconfig: Path) -> None:
    wait_rolled_out(kubeconfig, name=NAME, namespace=NAMESPACE,
                    what=f"{cluster.name}: {NAMESPACE}/{NAME}", timeout=READY_SECONDS)
