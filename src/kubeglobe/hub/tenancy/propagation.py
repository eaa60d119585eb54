"""Keeping each cluster's tenancy objects as the platform wants them (level-triggered).

A pass applies (server-side, forced) only what is missing or drifted, recording an
Event for each repair, then deletes the RBAC, quota and limit objects tenancy made
(label `kubeglobe.io/tenancy=true`) that are no longer wanted; a namespace goes only
while it holds no pods. `review` decides which ProjectNamespaces fit their projects.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import ALL_NS, AsyncClient, codecs
from lightkube.core.dictmixin import DictMixin
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace, Pod
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
from kubeglobe.failures import caught, count
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.tenancy.desired import (
    RESOURCES,
    Key,
    Manifest,
    apply_phase,
    desired_objects,
    drifted,
    key,
)
from kubeglobe.hub.tenancy.namespaces import PROJECT_LABEL
from kubeglobe.hub.tenancy.quota import QuotaExceeded, Sibling, check_namespace_fits
from kubeglobe.hub.tenancy.rbac import NamedBinding, NamedNamespace
from kubeglobe.hub.tenancy.workloads import (
    FORCE_ANNOTATION,
    describe_workloads,
    forced,
    platform_placed,
    workloads_in,
)
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.resources import (
    PlatformRoleBindingCR,
    ProjectCR,
    ProjectNamespaceCR,
)

log = logging.getLogger("kubeglobe.tenancy")
COMPONENT = "tenancy"
TENANCY_LABEL = "kubeglobe.io/tenancy"  # "true" on every object tenancy makes
# Kinds tenancy removes once unwanted; namespaces go by their own rule, roles never.
_PRUNABLE = ("ResourceQuota", "LimitRange", "RoleBinding", "ClusterRoleBinding")
APPLY_CONCURRENCY = 8


class CleanupBlocked(RuntimeError):
    """A namespace cannot go yet (it holds workloads, or its cluster cannot be reached)."""


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
        self._seen: set[tuple[str, Key]] = set()

    async def read_state(self) -> TenancyState:
        projects: dict[str, ProjectSpec] = {}
        async for p in self._hub.list(ProjectCR):
            try:
                projects[p["metadata"]["name"]] = ProjectSpec.model_validate(p.get("spec") or {})
            except ValidationError as e:
                caught(log, component=COMPONENT,
                       operation=f"reading project {p['metadata']['name']}", error=e)
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
                caught(log, component=COMPONENT,
                       operation=f"reading role binding {b['metadata']['name']}", error=e)
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
                caught(log, component=COMPONENT,
                       operation=f"status of project namespace {name}", error=e)

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
        """Bring one cluster to the desired tenancy objects; returns how many were applied
        (httpx2.HTTPError if the cluster cannot be read: nothing is pruned then)."""
        try:
            cluster = await self._access.client(name=name, spec=ClusterSpec.model_validate(spec))
        except (ValidationError, ClusterUnreachable, KubeconfigError) as e:
            # The heartbeat reports an unreachable cluster in its status.
            log.debug("cluster %s: not reachable for tenancy (%s)", name, e)
            count(component=COMPONENT, operation=f"reaching cluster {name}", error=e)
            return 0
        kube = cluster.kube
        wanted = desired_objects(cluster=name, namespaces=state.namespaces,
                                 bindings=state.bindings)
        actual = await _read_actual(kube)
        phases: dict[int, list[Manifest]] = {}
        for obj in wanted:
            if drifted(obj, actual.get(key(obj))):
                phases.setdefault(apply_phase(obj), []).append(obj)
            else:
                self._seen.add((name, key(obj)))
        applied = 0
        limit = asyncio.Semaphore(APPLY_CONCURRENCY)

        async def apply(obj: Manifest) -> bool:
            async with limit:
                return await self._apply(kube, name, obj, actual.get(key(obj)))

        for phase in sorted(phases):  # namespaces before what lives in them
            done = await asyncio.gather(*(apply(o) for o in phases[phase]))
            applied += sum(done)
        await self._prune(kube, name, {key(o) for o in wanted}, actual)
        return applied

    async def _apply(self, kube: AsyncClient, cluster: str, obj: Manifest,
                     actual: Manifest | None) -> bool:
        try:
            await kube.apply(codecs.from_dict(obj), field_manager=FIELD_MANAGER, force=True)
        except ApiError as e:
            caught(log, component=COMPONENT, operation=f"applying {_describe(key(obj))} on "
                   f"cluster {cluster}", error=e)
            return False
        if actual is not None or (cluster, key(obj)) in self._seen:
            how = "changed" if actual is not None else "deleted"
            await self._event(cluster, f"Repaired {_describe(key(obj))} on cluster "
                              f"{cluster}: it had been {how} outside the platform")
        self._seen.add((cluster, key(obj)))
        return True

    async def _prune(self, kube: AsyncClient, cluster: str, wanted: set[Key],
                     actual: dict[Key, Manifest]) -> None:
        for found in actual:
            if found[0] in _PRUNABLE and found not in wanted:
                await _delete(kube, cluster, found)
        for (kind, _, ns), item in actual.items():
            labels = (item.get("metadata") or {}).get("labels") or {}
            if kind != "Namespace" or PROJECT_LABEL not in labels or (
                    ("Namespace", "", ns) in wanted
                    or (item.get("status") or {}).get("phase") == "Terminating"):
                continue
            try:
                held = await _holds_pods(kube, ns)
            except ApiError as e:  # not knowing is not empty
                caught(log, component=COMPONENT,
                       operation=f"listing pods of namespace {ns} on cluster {cluster}",
                       error=e)
                continue
            if held:
                log.warning("cluster %s: namespace %s is no longer in any project but holds "
                            "pods; kept until they are gone", cluster, ns)
                continue
            await _delete(kube, cluster, ("Namespace", "", ns))

    async def remove_namespace(self, *, name: str, spec: dict[str, Any],
                               annotations: dict[str, str]) -> None:
        """Delete the namespace of ProjectNamespace `name` from its cluster, unless it holds
        workloads and the deletion is not forced (then CleanupBlocked says what is left)."""
        pns = ProjectNamespaceSpec.model_validate(spec)
        try:
            cluster = await self._access.client_of(pns.cluster)
        except (ClusterUnreachable, KubeconfigError) as e:
            raise CleanupBlocked(f"cluster {pns.cluster} cannot be reached: {e}") from e
        if cluster is None:
            return  # the cluster is gone, and its namespaces with it
        step = "reading"
        try:
            if not await platform_placed(cluster.kube, pns):
                return  # gone already, or not ours to remove
            held = {} if forced(annotations) else await workloads_in(cluster.kube,
                                                                     pns.namespace)
            if held:
                raise CleanupBlocked(
                    f"namespace {pns.namespace} on {pns.cluster} still holds "
                    f"{describe_workloads(held)}; remove them, or force with the "
                    f"annotation {FORCE_ANNOTATION}=true")
            step = "deleting"
            await cluster.kube.delete(Namespace, pns.namespace)
        except ApiError as e:
            if e.status.code != 404:  # else: gone already
                raise CleanupBlocked(f"{step} namespace {pns.namespace} on {pns.cluster}: "
                                     f"{e.status.code} {e.status.message}") from e
        except (httpx2.HTTPError, OSError) as e:
            raise CleanupBlocked(f"{step} namespace {pns.namespace} on {pns.cluster}: "
                                 f"{type(e).__name__}: {e}") from e
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
                await missing_ok(self._hub.delete(ProjectNamespaceCR, name))
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
            caught(log, component=COMPONENT, operation="recording an event", error=e)
        log.info(message)


async def _read_actual(kube: AsyncClient) -> dict[Key, Manifest]:
    """Every object tenancy made on the cluster, by key: one LIST per kind."""
    async def one(kind: str) -> list[tuple[Key, Manifest]]:
        resource = RESOURCES[kind]
        if issubclass(resource, NamespacedResource):
            listed = _manifests(kube.list(resource, namespace=ALL_NS,
                                          labels={TENANCY_LABEL: "true"}))
        else:
            listed = _manifests(kube.list(resource, labels={TENANCY_LABEL: "true"}))
        return [((kind, (m.get("metadata") or {}).get("namespace") or "",
                  (m.get("metadata") or {}).get("name", "")), m) async for m in listed]

    lists = await asyncio.gather(*(one(k) for k in RESOURCES))
    return {k: m for found in lists for k, m in found}


async def _manifests(items: AsyncIterable[object]) -> AsyncIterator[Manifest]:
    async for item in items:
        assert isinstance(item, DictMixin)  # every lightkube resource object is one
        yield item.to_dict()


async def _holds_pods(kube: AsyncClient, namespace: str) -> bool:
    async for _ in kube.list(Pod, namespace=namespace, chunk_size=1):
        return True  # one is enough: the rest of the pages are never asked for
    return False


async def _delete(kube: AsyncClient, cluster: str, found: Key) -> None:
    kind, namespace, name = found
    resource = RESOURCES[kind]
    try:
        if issubclass(resource, NamespacedResource):
            await kube.delete(resource, name, namespace=namespace)
        else:
            await kube.delete(resource, name)
    except ApiError as e:
        if e.status.code != 404:  # gone already is what was wanted
            caught(log, component=COMPONENT,
                   operation=f"pruning {_describe(found)} on cluster {cluster}", error=e)


def _describe(found: Key) -> str:
    kind, namespace, name = found
    return f"{kind} {namespace + '/' if namespace else ''}{name}"
