"""How `kubeglobe local status` names the health of a node and of a pod."""

from __future__ import annotations

from lightkube.models.core_v1 import (
    ContainerState,
    ContainerStateWaiting,
    ContainerStatus,
    Node,
    NodeCondition,
    NodeStatus,
    Pod,
    PodCondition,
    PodStatus,
)

from kubeglobe.local.cluster_health import node_health, pod_health


def _container(*, ready: bool, waiting: str | None = None) -> ContainerStatus:
    state = ContainerState(waiting=ContainerStateWaiting(reason=waiting)) if waiting else None
    return ContainerStatus(name="c", image="i", imageID="", ready=ready, restartCount=0,
                           state=state)


def test_node_health_is_its_ready_condition() -> None:
    ready = Node(status=NodeStatus(conditions=[NodeCondition(type="Ready", status="True")]))
    assert node_health(ready) == "ok"
    lost = Node(status=NodeStatus(conditions=[NodeCondition(
        type="Ready", status="Unknown", reason="NodeStatusUnknown",
        message="Kubelet stopped posting node status.")]))
    assert node_health(lost) == "NotReady: Kubelet stopped posting node status."
    assert node_health(Node()) == "no Ready condition yet"


def test_pod_health_says_what_is_wrong() -> None:
    assert pod_health(Pod(status=PodStatus(
        phase="Running", containerStatuses=[_container(ready=True)]))) == "ok"
    assert pod_health(Pod(status=PodStatus(
        phase="Running", containerStatuses=[_container(ready=False)]))) == "c: not ready"
    assert pod_health(Pod(status=PodStatus(phase="Running", containerStatuses=[
        _container(ready=False, waiting="CrashLoopBackOff")]))) == "c: CrashLoopBackOff"
    pending = Pod(status=PodStatus(phase="Pending", conditions=[PodCondition(
        type="PodScheduled", status="False", reason="Unschedulable",
        message="0/4 nodes are available")]))
    assert pod_health(pending) == "Pending: 0/4 nodes are available"
    assert pod_health(Pod()) == "no status yet"
