"""Keeping each cluster's tenancy objects as the platform wants them (level-triggered).

`TenancyPropagator.reconcile_cluster` reads the whole tenancy state from the global
cluster, computes what the cluster should hold (`desired.desired_objects`), reads each
object back from the cluster and applies (server-side, forced) only those that are
missing or drifted, recording an Event for each repair of something that existed. It
then deletes RBAC, quota and limit objects the platform made that are no longer wanted;
a namespace is removed only while it holds no pods (else it is reported and kept).
`review_namespaces` decides, for every ProjectNamespace, whether it fits its project.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType
from pydantic import ValidationError

from kubeglobe.api.cluster import ClusterSpec
from kubeglobe.api.meta import API_VERSION, FIELD_MANAGER
from kubeglobe.api.tenancy import (
    PlatformRoleBindingSpec,
    ProjectNamespaceSpec,
    ProjectNamespaceStatus,
    ProjectSpec,
)
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable
from kubeglobe.hub.tenancy.desired import api_path, apply_phase, desired_objects, drifted, key
from kubeglobe.hub.tenancy.namespaces import PROJECT_LABEL
from kubeglobe.hub.tenancy.quota import QuotaExceeded, Sibling, check_namespace_fits
from kubeglobe.hub.tenancy.rbac import NamedBinding, NamedNamespace
from kubeglobe.hub.tenancy.workloads import (
    FORCE_ANNOTATION,
    WorkloadCheckFailed,
    count_workloads,
    describe_workloads,
    forced,
    placed_by_platform,
)
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.resources import (
    PlatformRoleBindingCR,
    ProjectCR,
    ProjectNamespaceCR,
)

log = logging.getLogger("kubeglobe.tenancy")


class CleanupBlocked(RuntimeError):
    """A namespace cannot go yet (it holds workloads, or its cluster cannot be reached)."""
_SELECTOR = "kubeglobe.io/tenancy=true"
_PRUNABLE = {  # kind -> list path (cluster-wide) of objects the platform may remove
    "ResourceQuota": "/api/v1/resourcequotas",
    "LimitRange": "/api/v1/limitranges",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/rolebindings",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}
_LISTED = {  # kind -> list path of everything tenancy makes (read once per pass)
    "Namespace": "/api/v1/namespaces",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    **_PRUNABLE,
}
APPLY_CONCURRENCY = 8


@dataclass
class TenancyState:
    projects: dict[str, ProjectSpec]
    namespaces: list[NamedNamespace]  # accepted ones only
    bindings: list[NamedBinding]
    verdicts: dict[str, ProjectNamespaceStatus]
    # name -> (cluster, status as stored), to write only the statuses that change
    published: dict[str, tuple[str | None, dict[str, Any]]] = field(default_factory=dict)


def review(*, projects: dict[str, ProjectSpec],
           namespaces: list[tuple[str, str, dict[str, Any]]]) -> TenancyState:
    """Which ProjectNamespaces are accepted (pure). Input: (created, name, spec) triples;
    first come, first served: a later namespace never pushes out an earlier one."""
    accepted: list[NamedNamespace] = []
    verdicts: dict[str, ProjectNamespaceStatus] = {}
    for _, name, raw in sorted(namespaces, key=lambda n: (n[0], n[1])):
        try:
            spec = ProjectNamespaceSpec.model_validate(raw)
        except ValidationError as e:
            reason = "; ".join(err["msg"] for err in e.errors())
            verdicts[name] = ProjectNamespaceStatus(phase="Rejected", message=reason)
            continue
        project = projects.get(spec.project)
        clash = next((n for n in accepted if n.spec.cluster == spec.cluster
                      and n.spec.namespace == spec.namespace), None)
        try:
            if project is None:
                raise QuotaExceeded(f"project {spec.project} does not exist")
            if clash is not None:
                raise QuotaExceeded(f"namespace {spec.namespace} on {spec.cluster} already "
                                    f"belongs to {clash.name}")
            siblings = [Sibling(n.name, n.spec.quota) for n in accepted
                        if n.spec.project == spec.project and n.spec.cluster == spec.cluster]
            check_namespace_fits(name=name, spec=spec, project=project, siblings=siblings)
        except QuotaExceeded as e:
            verdicts[name] = ProjectNamespaceStatus(phase="Rejected", message=str(e))
            continue
        accepted.append(NamedNamespace(name, spec))
        verdicts[name] = ProjectNamespaceStatus(phase="Accepted", message=None)
    return TenancyState(projects=projects, namespaces=accepted, bindings=[],
                        verdicts=verdicts)


class TenancyPropagator:
    def __init__(self, *, hub: AsyncClient, access: ClusterAccess) -> None:
        self._hub = hub
        self._access = access
        # Objects this process has seen in place: one missing later was deleted by hand.
        self._seen: set[tuple[str, tuple[str, str, str]]] = set()

    async def read_state(self) -> TenancyState:
        projects: dict[str, ProjectSpec] = {}
        async for p in self._hub.list(ProjectCR):
            try:
                projects[p["metadata"]["name"]] = ProjectSpec.model_validate(p.get("spec") or {})
            except ValidationError as e:
                log.warning("project %s is invalid: %s", p["metadata"]["name"], e)
        listed = [n async for n in self._hub.list(ProjectNamespaceCR)]
        # One being deleted is no longer wanted; its delete handler removes it.
        raw = [(n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"],
                n.get("spec") or {}) for n in listed
               if not n["metadata"].get("deletionTimestamp")]
        state = review(projects=projects, namespaces=raw)
        state.published = {n["metadata"]["name"]: ((n.get("spec") or {}).get("cluster"),
                                                    dict(n.get("status") or {}))
                           for n in listed}
        async for b in self._hub.list(PlatformRoleBindingCR):
            try:
                state.bindings.append(NamedBinding(
                    b["metadata"]["name"], PlatformRoleBindingSpec.model_validate(
                        b.get("spec") or {})))
            except ValidationError as e:
                log.warning("role binding %s is invalid: %s", b["metadata"]["name"], e)
        return state

    async def publish_verdicts(self, state: TenancyState, *, cluster: str) -> None:
        """Write the Accepted/Rejected status of the cluster's ProjectNamespaces (and of
        unreadable ones) when it changed."""
        async def publish(name: str, verdict: ProjectNamespaceStatus) -> None:
            body = {"status": verdict.model_dump(mode="json")}
            try:
                await self._hub.patch(ProjectNamespaceCR.Status, name, body,
                                      patch_type=PatchType.MERGE)
            except ApiError as e:
                log.warning("status of project namespace %s: %s", name, e.status.message)

        changed = []
        for name, (where, status) in state.published.items():
            verdict = state.verdicts.get(name)
            if where not in (cluster, None) or verdict is None or status == verdict.model_dump(
                    mode="json", exclude_none=True):
                continue
            changed.append(publish(name, verdict))
        await asyncio.gather(*changed)

    async def reconcile_cluster(self, *, name: str, spec: dict[str, Any],
                                state: TenancyState) -> int:
        """Bring one cluster to the desired tenancy objects; returns how many were applied."""
        try:
            target = await self._access.target(name=name, spec=ClusterSpec.model_validate(spec))
        except (ValidationError, ClusterUnreachable, KubeconfigError) as e:
            log.debug("cluster %s: not reachable for tenancy (%s)", name, e)
            return 0
        wanted = desired_objects(cluster=name, namespaces=state.namespaces,
                                 bindings=state.bindings)
        async with target.client(timeout=10) as http:
            actual = await self._read_actual(http, name)
            if actual is None:
                return 0
            phases: dict[int, list[dict[str, Any]]] = {}
            for obj in wanted:
                if drifted(obj, actual.get(key(obj))):
                    phases.setdefault(apply_phase(obj), []).append(obj)
                else:
                    self._seen.add((name, key(obj)))
            applied = 0
            limit = asyncio.Semaphore(APPLY_CONCURRENCY)

            async def apply(obj: dict[str, Any]) -> bool:
                async with limit:
                    return await self._apply(http, name, obj, actual.get(key(obj)))

            for phase in sorted(phases):  # namespaces before what lives in them
                done = await asyncio.gather(*(apply(o) for o in phases[phase]))
                applied += sum(done)
            await self._prune(http, name, {key(o) for o in wanted}, actual)
        return applied

    async def _read_actual(self, http: httpx.AsyncClient, cluster: str,
                           ) -> dict[tuple[str, str, str], dict[str, Any]] | None:
        """Every object tenancy made on the cluster, by key: one LIST per kind."""
        async def one(kind: str, path: str) -> list[tuple[str, dict[str, Any]]] | None:
            r = await http.get(path, params={"labelSelector": _SELECTOR})
            if r.status_code != 200:
                log.warning("cluster %s: listing %s failed: HTTP %s", cluster, kind,
                            r.status_code)
                return None
            return [(kind, item) for item in r.json().get("items") or []]

        lists = await asyncio.gather(*(one(k, p) for k, p in _LISTED.items()))
        if any(found is None for found in lists):
            return None
        actual = {}
        for found in lists:
            for kind, item in found or []:
                meta = item.get("metadata") or {}
                actual[(kind, meta.get("namespace", ""), meta.get("name", ""))] = item
        return actual

    async def _apply(self, http: httpx.AsyncClient, cluster: str, obj: dict[str, Any],
                     actual: dict[str, Any] | None) -> bool:
        r = await http.patch(
            api_path(obj), params={"fieldManager": FIELD_MANAGER, "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
            content=yaml.safe_dump(obj))
        if r.status_code >= 300:
            log.warning("cluster %s: applying %s failed: HTTP %s %s", cluster, key(obj),
                        r.status_code, r.text[:200])
            return False
        if actual is not None or (cluster, key(obj)) in self._seen:
            how = "changed" if actual is not None else "deleted"
            where = obj["metadata"].get("namespace")
            await self._event(cluster, f"Repaired {obj['kind']} "
                              f"{where + '/' if where else ''}"
                              f"{obj['metadata']['name']} on cluster {cluster}: it had "
                              f"been {how} outside the platform")
        self._seen.add((cluster, key(obj)))
        return True

    async def _prune(self, http: httpx.AsyncClient, cluster: str,
                     wanted: set[tuple[str, str, str]],
                     actual: dict[tuple[str, str, str], dict[str, Any]]) -> None:
        for (kind, namespace, obj_name), item in actual.items():
            if kind not in _PRUNABLE or (kind, namespace, obj_name) in wanted:
                continue
            version = "v1" if kind in ("ResourceQuota", "LimitRange") else (
                "rbac.authorization.k8s.io/v1")
            await http.delete(api_path({"apiVersion": version, "kind": kind,
                                        "metadata": item["metadata"]}))
        for (kind, _, ns), item in actual.items():
            labels = (item.get("metadata") or {}).get("labels") or {}
            if kind != "Namespace" or PROJECT_LABEL not in labels or (
                    ("Namespace", "", ns) in wanted
                    or item.get("status", {}).get("phase") == "Terminating"):
                continue
            pods = await http.get(f"/api/v1/namespaces/{ns}/pods", params={"limit": "1"})
            if pods.status_code == 200 and pods.json().get("items"):
                log.warning("cluster %s: namespace %s is no longer in any project but holds "
                            "pods; kept until they are gone", cluster, ns)
                continue
            await http.delete(f"/api/v1/namespaces/{ns}")

    async def remove_namespace(self, *, name: str, spec: dict[str, Any],
                               annotations: dict[str, str]) -> None:
        """Delete the namespace of ProjectNamespace `name` from its cluster, unless it holds
        workloads and the deletion is not forced (then CleanupBlocked says what is left)."""
        pns = ProjectNamespaceSpec.model_validate(spec)
        try:
            target = await self._access.target_of(pns.cluster)
        except (ClusterUnreachable, KubeconfigError) as e:
            raise CleanupBlocked(f"cluster {pns.cluster} cannot be reached: {e}") from e
        if target is None:
            return  # the cluster is gone, and its namespaces with it
        async with target.client(timeout=10) as http:
            try:
                if not await placed_by_platform(http, pns):
                    return  # gone already, or not ours to remove
                held = {} if forced(annotations) else await count_workloads(http,
                                                                            pns.namespace)
            except WorkloadCheckFailed as e:
                raise CleanupBlocked(str(e)) from e
            if held:
                raise CleanupBlocked(
                    f"namespace {pns.namespace} on {pns.cluster} still holds "
                    f"{describe_workloads(held)}; remove them, or force with the "
                    f"annotation {FORCE_ANNOTATION}=true")
            r = await http.delete(f"/api/v1/namespaces/{pns.namespace}")
            if r.status_code not in (200, 202, 404):
                raise CleanupBlocked(f"deleting namespace {pns.namespace} on {pns.cluster}: "
                                     f"HTTP {r.status_code} {r.text[:200]}")
        log.info("project namespace %s: removed %s from %s", name, pns.namespace, pns.cluster)

    async def remove_project_namespaces(self, *, project: str, clusters: set[str] | None,
                                        force: bool) -> int:
        """Delete the project's ProjectNamespaces (on `clusters`, or all); how many remain."""
        remaining = 0
        async for n in self._hub.list(ProjectNamespaceCR):
            spec = n.get("spec") or {}
            if spec.get("project") != project or (
                    clusters is not None and spec.get("cluster") not in clusters):
                continue
            remaining += 1
            name = n["metadata"]["name"]
            if force and not forced(n["metadata"].get("annotations")):
                await self._hub.patch(ProjectNamespaceCR, name, {"metadata": {"annotations": {
                    FORCE_ANNOTATION: "true"}}}, patch_type=PatchType.MERGE)
            if not n["metadata"].get("deletionTimestamp"):
                try:
                    await self._hub.delete(ProjectNamespaceCR, name)
                except ApiError as e:
                    if e.status.code != 404:
                        raise
        return remaining

    async def _event(self, cluster: str, message: str) -> None:
        now = dt.datetime.now(dt.UTC)
        event = Event(
            # Events about cluster-scoped objects live in `default` (the API demands it).
            metadata=ObjectMeta(generateName=f"{cluster}.", namespace="default"),
            involvedObject=ObjectReference(apiVersion=API_VERSION, kind="Cluster",
                                           name=cluster),
            reason="DriftRepaired", message=message, type="Normal",
            source=EventSource(component="kubeglobe-controller"),
            firstTimestamp=now, lastTimestamp=now, count=1,
        )
        try:
            await self._hub.create(event)
        except ApiError as e:
            log.warning("recording an event failed: %s", e.status.message)
        log.info(message)


