"""What `kubeglobe local status` shows of each cluster beside its processes: its nodes and
the platform's pods (`kube-system`, `kubeglobe-system`), each with its health."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx2
from lightkube.models.core_v1 import Node as NodeModel
from lightkube.models.core_v1 import Pod as PodModel
from lightkube.resources.core_v1 import Node, Pod

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.kube.client import KUBE_ERRORS, load_kubeconfig, sync_client

PLATFORM_NAMESPACES = ("kube-system", SYSTEM_NAMESPACE)


@dataclass(frozen=True)
class ObjectStatus:
    cluster: str
    kind: str  # Node, Pod, or Cluster when the cluster did not answer
    name: str  # a node's name, NAMESPACE/NAME of a pod
    node: str  # where a pod runs
    health: str  # "ok", or what is wrong


def node_health(node: NodeModel) -> str:
    conditions = node.status.conditions if node.status and node.status.conditions else []
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if ready is None:
        return "no Ready condition yet"
    return "ok" if ready.status == "True" else f"NotReady: {ready.message or ready.reason}"


def pod_health(pod: PodModel) -> str:
    status = pod.status
    if status is None or status.phase is None:
        return "no status yet"
    if status.phase != "Running":
        why = next((c.message or c.reason for c in status.conditions or []
                    if c.status != "True" and (c.message or c.reason)), None)
        return f"{status.phase}: {why}" if why else status.phase
    for container in status.containerStatuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None:
            return f"{container.name}: {waiting.reason}"
        if not container.ready:
            return f"{container.name}: not ready"
    return "ok"


def cluster_objects(cluster: str, kubeconfig: Path) -> list[ObjectStatus]:
    """The cluster's nodes and platform pods; one Cluster row if it does not answer."""
    try:
        with sync_client(load_kubeconfig(path=kubeconfig),
                         timeout=httpx2.Timeout(5.0)) as client:
            found = [ObjectStatus(cluster, "Node", n.metadata.name, "", node_health(n))
                     for n in client.list(Node) if n.metadata and n.metadata.name]
            for namespace in PLATFORM_NAMESPACES:
                for p in client.list(Pod, namespace=namespace):
                    if p.metadata is None:
                        continue
                    found.append(ObjectStatus(
                        cluster, "Pod", f"{namespace}/{p.metadata.name}",
                        (p.spec.nodeName if p.spec else None) or "", pod_health(p)))
            return found
    except KUBE_ERRORS as e:
        return [ObjectStatus(cluster, "Cluster", cluster, "", f"unreachable: {e}")]
