"""Does a namespace on a workload cluster still hold workloads? (read-only)

A project namespace is removed without being forced only when it holds none: no pod
that is still running or pending, and no Deployment, StatefulSet, DaemonSet, Job or
CronJob. `describe_workloads` turns the counts into the words of a refusal.
"""

from __future__ import annotations

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import Namespace, Pod

from kubeglobe.api.tenancy import ProjectNamespaceSpec
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.tenancy.namespaces import PROJECT_LABEL

FORCE_ANNOTATION = "kubeglobe.io/force-delete"
# Kubernetes serves CronJobs as batch/v1 from 1.21 and as batch/v1beta1 until 1.25.
CronJobV1beta1 = create_namespaced_resource("batch", "v1beta1", "CronJob", "cronjobs")
# kind -> its resource classes, the first one the cluster serves is counted
_WORKLOADS: dict[str, tuple[type[NamespacedResource], ...]] = {
    "pods": (Pod,), "deployments": (Deployment,), "statefulsets": (StatefulSet,),
    "daemonsets": (DaemonSet,), "jobs": (Job,), "cronjobs": (CronJob, CronJobV1beta1),
}
_FINISHED = ("Succeeded", "Failed")


class WorkloadCheckFailed(RuntimeError):
    pass


def forced(annotations: dict[str, str] | None) -> bool:
    return (annotations or {}).get(FORCE_ANNOTATION, "").lower() == "true"


async def platform_placed(kube: AsyncClient, spec: ProjectNamespaceSpec) -> bool:
    """Whether the namespace of `spec` exists on its cluster and the platform put it
    there for that project (a namespace someone else made is never ours to judge)."""
    found = await missing_ok(kube.get(Namespace, spec.namespace))
    if found is None:
        return False
    return ((found.metadata and found.metadata.labels) or {}).get(PROJECT_LABEL) == spec.project


async def workloads_in(kube: AsyncClient, namespace: str) -> dict[str, int]:
    """Workloads per kind in `namespace` (kinds with none are left out; a missing
    namespace holds none)."""
    counts: dict[str, int] = {}
    for kind, resources in _WORKLOADS.items():
        for resource in resources:
            try:
                found = await _count(kube, resource, namespace)
            except ApiError as e:
                if e.status.code == 404:
                    continue  # this version is not served: the next one, if any
                raise
            if found:
                counts[kind] = found
            break
    return counts


async def _count(kube: AsyncClient, resource: type[NamespacedResource], namespace: str) -> int:
    if resource is Pod:  # finished pods hold nothing
        return len([p async for p in kube.list(Pod, namespace=namespace, chunk_size=500)
                    if not (p.status and p.status.phase in _FINISHED)])
    return len([o async for o in kube.list(resource, namespace=namespace, chunk_size=500)])


def describe_workloads(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind if n != 1 else kind.removesuffix('s')}"
                     for kind, n in sorted(counts.items()))
