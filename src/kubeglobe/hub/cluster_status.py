"""Pure rules for a Cluster's status: version policy, inventory summary, phase.

`observe_status` is the only function that writes a Cluster's status fields: from the
current status and what the last probe saw (or why it failed) it computes the next one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from kubeglobe.api.cluster import ClusterStatus, Condition
from kubeglobe.api.quantity import format_quantity, parse_quantity
from kubeglobe.kube.microtime import format_time, parse_time

MIN_VERSION = (1, 19)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class Inventory:
    kubernetes_version: str
    node_count: int
    ready_node_count: int
    capacity: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=dict)


def version_refusal(git_version: str) -> str | None:
    """Why a cluster of this version is refused, or None if it is accepted."""
    m = _VERSION.match(git_version)
    if m is None:
        return f"cannot read Kubernetes version {git_version!r}"
    found = (int(m.group(1)), int(m.group(2)))
    if found < MIN_VERSION:
        want = ".".join(map(str, MIN_VERSION))
        return (f"Kubernetes {git_version} is not supported: KubeGlobe manages clusters of "
                f"Kubernetes >= {want}; upgrade the cluster and the hub accepts it")
    return None


def _sum(nodes: list[dict[str, Any]], key: str) -> dict[str, str]:
    totals: dict[str, float] = {}
    for node in nodes:
        for resource, qty in node.get("status", {}).get(key, {}).items():
            if resource in ("cpu", "memory", "pods", "ephemeral-storage"):
                totals[resource] = totals.get(resource, 0.0) + parse_quantity(qty)
    return {r: format_quantity(r, v) for r, v in sorted(totals.items())}


def summarize(*, version: dict[str, Any], nodes: list[dict[str, Any]]) -> Inventory:
    def ready(node: dict[str, Any]) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in node.get("status", {}).get("conditions", []))

    return Inventory(
        kubernetes_version=str(version.get("gitVersion", "unknown")),
        node_count=len(nodes),
        ready_node_count=sum(1 for n in nodes if ready(n)),
        capacity=_sum(nodes, "capacity"),
        allocatable=_sum(nodes, "allocatable"),
    )


def _ready_condition(current: ClusterStatus, status: str, reason: str, message: str | None,
                     now: dt.datetime) -> list[Condition]:
    old = next((c for c in current.conditions if c.type == "Ready"), None)
    since = old.lastTransitionTime if old is not None and old.status == status else format_time(now)
    ready = Condition(type="Ready", status=status,  # type: ignore[arg-type]
                      reason=reason, message=message, lastTransitionTime=since)
    return [c for c in current.conditions if c.type != "Ready"] + [ready]


def observe_status(
    *, current: ClusterStatus, inventory: Inventory | None, error: str | None,
    now: dt.datetime, lost_after_seconds: float, last_contact: dt.datetime | None = None,
    generation: int | None = None,
) -> ClusterStatus:
    """The next status after one probe: `inventory` on success, else `error`.

    A cluster is Unavailable once nothing of it has answered for `lost_after_seconds`:
    `last_contact` is its latest answer to any probe (the liveness probes between
    heartbeats too), else its last heartbeat."""
    if inventory is not None:
        refusal = version_refusal(inventory.kubernetes_version)
        return current.model_copy(update={
            "phase": "Rejected" if refusal else "Ready",
            "message": refusal,
            "kubernetesVersion": inventory.kubernetes_version,
            "nodeCount": inventory.node_count,
            "readyNodeCount": inventory.ready_node_count,
            "capacity": inventory.capacity,
            "allocatable": inventory.allocatable,
            "lastHeartbeatTime": format_time(now),
            "observedGeneration": generation,
            "conditions": _ready_condition(
                current, "False" if refusal else "True",
                "VersionNotSupported" if refusal else "HeartbeatSucceeded", refusal, now),
        })
    heartbeat = current.lastHeartbeatTime
    last = last_contact or (None if heartbeat is None else parse_time(heartbeat))
    silent_for = None if last is None else (now - last).total_seconds()
    lost = silent_for is not None and silent_for >= lost_after_seconds
    if last is None:
        phase = "Connecting"
        message = f"not reached yet: {error}"
    elif lost:
        phase = "Unavailable"
        message = f"no answer for {silent_for:.0f}s: {error}"
    else:
        phase = current.phase
        message = f"probe failed: {error}"
    return current.model_copy(update={
        "phase": phase,
        "message": message,
        "observedGeneration": generation,
        "conditions": _ready_condition(
            current, "False" if phase == "Unavailable" else "Unknown",
            "HeartbeatMissed", message, now),
    })


def rejected(*, current: ClusterStatus, reason: str, now: dt.datetime,
             generation: int | None = None) -> ClusterStatus:
    """A spec the controller cannot act on: Rejected, with the reason for people."""
    return current.model_copy(update={
        "phase": "Rejected", "message": reason, "observedGeneration": generation,
        "conditions": _ready_condition(current, "False", "Rejected", reason, now),
    })
