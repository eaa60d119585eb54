import datetime as dt

import pytest

from kubeglobe.api.cluster import ClusterStatus
from kubeglobe.hub.cluster_status import Inventory, observe_status, summarize, version_refusal

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
INV = Inventory(kubernetes_version="v1.20.2", node_count=2, ready_node_count=1,
                capacity={"cpu": "4"}, allocatable={"cpu": "3"})


@pytest.mark.parametrize(("version", "refused"), [
    ("v1.18.20", True), ("v1.19.0", False), ("v1.20.2", False), ("v2.0.0", False),
    ("1.17", True), ("garbage", True),
])
def test_version_policy(version: str, refused: bool) -> None:
    reason = version_refusal(version)
    assert (reason is not None) == refused
    if refused and version.startswith("v1.18"):
        assert "Kubernetes >= 1.19" in reason  # type: ignore[operator]


def test_success_makes_ready_with_inventory() -> None:
    s = observe_status(current=ClusterStatus(), inventory=INV, error=None, now=T0,
                       lost_after_seconds=8)
    assert s.phase == "Ready" and s.nodeCount == 2 and s.readyNodeCount == 1
    assert s.lastHeartbeatTime == "2026-01-01T00:00:00Z"
    assert [c.status for c in s.conditions if c.type == "Ready"] == ["True"]


def test_old_kubernetes_is_rejected_with_reason() -> None:
    old = Inventory(kubernetes_version="v1.18.3", node_count=1, ready_node_count=1)
    s = observe_status(current=ClusterStatus(), inventory=old, error=None, now=T0,
                       lost_after_seconds=8)
    assert s.phase == "Rejected" and "v1.18.3 is not supported" in (s.message or "")


def test_silence_for_the_grace_makes_unavailable_then_recovery() -> None:
    ready = observe_status(current=ClusterStatus(), inventory=INV, error=None, now=T0,
                           lost_after_seconds=8)
    # the liveness probes between heartbeats count: 5 s after the last answer it is
    # still Ready, though the heartbeat is 12 s old
    missed = observe_status(current=ready, inventory=None, error="refused",
                            now=T0 + dt.timedelta(seconds=12), lost_after_seconds=8,
                            last_contact=T0 + dt.timedelta(seconds=7))
    assert missed.phase == "Ready" and "probe failed: refused" in (missed.message or "")
    lost = observe_status(current=missed, inventory=None, error="refused",
                          now=T0 + dt.timedelta(seconds=15), lost_after_seconds=8,
                          last_contact=T0 + dt.timedelta(seconds=7))
    assert lost.phase == "Unavailable" and "no answer for 8s" in (lost.message or "")
    # a new leader knows no liveness answers: the heartbeat in the status is its clock
    fresh = observe_status(current=ready, inventory=None, error="refused",
                           now=T0 + dt.timedelta(seconds=8), lost_after_seconds=8)
    assert fresh.phase == "Unavailable"
    back = observe_status(current=lost, inventory=INV, error=None,
                          now=T0 + dt.timedelta(seconds=60), lost_after_seconds=8)
    assert back.phase == "Ready"
    ready_cond = [c for c in back.conditions if c.type == "Ready"]
    assert ready_cond[0].lastTransitionTime == "2026-01-01T00:01:00Z"


def test_never_reached_is_connecting() -> None:
    s = observe_status(current=ClusterStatus(), inventory=None, error="timeout", now=T0,
                       lost_after_seconds=8)
    assert s.phase == "Connecting"


def test_summarize_sums_capacity_and_counts_ready_nodes() -> None:
    node = {"status": {"capacity": {"cpu": "2", "memory": "1Gi", "pods": "110"},
                       "allocatable": {"cpu": "1500m", "memory": "512Mi"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}
    down = {"status": {"capacity": {"cpu": "2"}, "conditions": [{"type": "Ready",
                                                                 "status": "False"}]}}
    inv = summarize(version={"gitVersion": "v1.20.2"}, nodes=[node, down])
    assert inv.node_count == 2 and inv.ready_node_count == 1
    assert inv.capacity["cpu"] == "4" and inv.capacity["memory"] == "1024Mi"
    assert inv.allocatable["cpu"] == "1500m"


def test_summarize_reads_nodes_as_lightkube_lists_them() -> None:
    from lightkube.resources.core_v1 import Node

    node = Node.from_dict({"metadata": {"name": "n1"}, "status": {
        "capacity": {"cpu": "2", "memory": "2Gi"}, "allocatable": {"cpu": "1"},
        "conditions": [{"type": "Ready", "status": "True"}]}})
    inv = summarize(version={"gitVersion": "v1.20.2"}, nodes=[node.to_dict()])
    assert (inv.node_count, inv.ready_node_count) == (1, 1)
    assert inv.capacity == {"cpu": "2", "memory": "2048Mi"}
    assert inv.allocatable == {"cpu": "1"}
