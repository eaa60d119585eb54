"""Does a namespace on a workload cluster still hold workloads? (read-only)

A project namespace is removed without being forced only when it holds none: no pod
that is still running or pending, and no Deployment, StatefulSet, DaemonSet, Job or
CronJob. `describe_workloads` turns the counts into the words of a refusal.
"""

from __future__ import annotations

import httpx

from kubeglobe.api.tenancy import ProjectNamespaceSpec
from kubeglobe.hub.tenancy.namespaces import PROJECT_LABEL

FORCE_ANNOTATION = "kubeglobe.io/force-delete"
_LISTS = {
    "pods": "/api/v1/namespaces/{ns}/pods",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "statefulsets": "/apis/apps/v1/namespaces/{ns}/statefulsets",
    "daemonsets": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "cronjobs": "/apis/batch/v1beta1/namespaces/{ns}/cronjobs",
}


class WorkloadCheckFailed(RuntimeError):
    pass


def forced(annotations: dict[str, str] | None) -> bool:
    return (annotations or {}).get(FORCE_ANNOTATION, "").lower() == "true"


async def placed_by_platform(http: httpx.AsyncClient, spec: ProjectNamespaceSpec) -> bool:
    """Whether the namespace of `spec` exists on its cluster and the platform put it
    there for that project (a namespace someone else made is never ours to judge)."""
    r = await http.get(f"/api/v1/namespaces/{spec.namespace}")
    if r.status_code == 404:
        return False
    if r.status_code != 200:
        raise WorkloadCheckFailed(f"reading namespace {spec.namespace} on {spec.cluster}: "
                                  f"HTTP {r.status_code}")
    labels = (r.json().get("metadata") or {}).get("labels") or {}
    return bool(labels.get(PROJECT_LABEL) == spec.project)


async def count_workloads(http: httpx.AsyncClient, namespace: str) -> dict[str, int]:
    """Workloads per kind in `namespace` (kinds with none are left out; a missing
    namespace holds none)."""
    counts: dict[str, int] = {}
    for kind, path in _LISTS.items():
        r = await http.get(path.format(ns=namespace), params={"limit": "500"})
        if r.status_code == 404:
            continue
        if r.status_code != 200:
            raise WorkloadCheckFailed(f"listing {kind} in {namespace}: HTTP {r.status_code} "
                                      f"{r.text[:200]}")
        items = r.json().get("items") or []
        if kind == "pods":
            items = [p for p in items if (p.get("status") or {}).get("phase")
                     not in ("Succeeded", "Failed")]
        if items:
            counts[kind] = len(items)
    return counts


def describe_workloads(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind if n != 1 else kind.removesuffix('s')}"
                     for kind, n in sorted(counts.items()))
