"""The validating admission webhook the global cluster calls for tenancy resources.

`POST /admission/tenancy` takes an AdmissionReview and answers allowed or denied with
the reason. The rules are pure (hub/tenancy/admission.py); this module reads what they
need: the projects and project namespaces, and, for a deletion that would remove
namespaces, whether those still hold workloads on their clusters (reached like the
controller reaches them: directly for import, through the platform proxy for register).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret
from pydantic import ValidationError

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.api.tenancy import ProjectNamespaceSpec, ProjectSpec
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable, PlatformRoute
from kubeglobe.hub.install import CONTROLLER_TOKEN_SECRET, WEBHOOK_PATH
from kubeglobe.hub.tenancy.admission import (
    SPEC_MODELS,
    Denied,
    NamespaceEntry,
    check_namespace,
    check_project,
    namespaces_to_check,
    spec_changed,
    spec_of,
)
from kubeglobe.hub.tenancy.workloads import (
    FORCE_ANNOTATION,
    WorkloadCheckFailed,
    count_workloads,
    describe_workloads,
    placed_by_platform,
)
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.informer import Informer
from kubeglobe.kube.resources import ProjectCR, ProjectNamespaceCR
from kubeglobe.kube.secrets import secret_text

log = logging.getLogger("kubeglobe.admission")


class WorkloadProbe:
    """Reads workload clusters for the webhook, as the controller does."""

    def __init__(self, *, hub: AsyncClient, platform_url: str, ca_file: str | None) -> None:
        self._hub = hub
        self._url = platform_url
        self._ca = ca_file
        self._access: ClusterAccess | None = None

    async def _cluster_access(self) -> ClusterAccess:
        if self._access is None:
            secret = await self._hub.get(Secret, CONTROLLER_TOKEN_SECRET,
                                         namespace=SYSTEM_NAMESPACE)
            token = secret_text(secret.data or {}, "token") or ""
            self._access = ClusterAccess(hub=self._hub, platform=PlatformRoute(
                url=self._url, ca_file=self._ca, token=token))
        return self._access

    async def workloads(self, entry: NamespaceEntry) -> dict[str, int]:
        """Workloads in the entry's namespace, if the platform put it there."""
        target = await (await self._cluster_access()).target_of(entry.spec.cluster)
        if target is None:
            return {}
        async with target.client(timeout=10) as http:
            if not await placed_by_platform(http, entry.spec):
                return {}
            return await count_workloads(http, entry.spec.namespace)


class TenancyView:
    """Projects and project namespaces as admission reads them: from live caches once
    they are synced, else straight from the API."""

    def __init__(self, hub: AsyncClient) -> None:
        self.hub = hub
        self.projects = Informer(hub, ProjectCR)
        self.namespaces = Informer(hub, ProjectNamespaceCR)

    def start(self) -> None:
        self.projects.start()
        self.namespaces.start()

    async def stop(self) -> None:
        await self.projects.stop()
        await self.namespaces.stop()

    async def entries(self) -> list[NamespaceEntry]:
        cached = self.namespaces.items()
        objects = list(cached.values()) if cached is not None else [
            n async for n in self.hub.list(ProjectNamespaceCR)]
        found = []
        for n in objects:
            try:
                spec = ProjectNamespaceSpec.model_validate(n.get("spec") or {})
            except ValidationError:
                continue
            found.append(NamespaceEntry(
                name=n["metadata"]["name"], spec=spec,
                rejected=(n.get("status") or {}).get("phase") == "Rejected",
                deleting=bool(n["metadata"].get("deletionTimestamp"))))
        return found

    async def project(self, name: str) -> ProjectSpec | None:
        cached = self.projects.items()
        obj = cached.get(name) if cached is not None else None
        if obj is None:  # not cached (yet): a project created a moment ago is not denied
            try:
                obj = await self.hub.get(ProjectCR, name)
            except ApiError as e:
                if e.status.code != 404:
                    raise
                obj = None
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        try:
            return ProjectSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            return None


async def decide(request: dict[str, Any], *, view: TenancyView, probe: WorkloadProbe) -> None:
    """Raise Denied with the reason, or return to allow."""
    kind = (request.get("kind") or {}).get("kind", "")
    if kind not in SPEC_MODELS:
        return
    operation = request.get("operation", "")
    obj = request.get("object") or {}
    old = request.get("oldObject")
    if operation in ("CREATE", "UPDATE") and spec_changed(operation, obj, old):
        spec = spec_of(kind, obj)
        name = obj["metadata"]["name"]
        if kind == "ProjectNamespace":
            check_namespace(name, spec, project=await view.project(spec.project),
                            others=await view.entries())
        elif kind == "Project":
            check_project(name, spec, others=await view.entries())
    if kind in ("Project", "ProjectNamespace") and operation in ("UPDATE", "DELETE"):
        busy = []
        for entry in namespaces_to_check(kind, operation, obj, old, await view.entries()):
            try:
                held = await probe.workloads(entry)
            except (ClusterUnreachable, KubeconfigError, WorkloadCheckFailed, OSError) as e:
                raise Denied(f"cannot tell whether namespace {entry.spec.namespace} on "
                             f"{entry.spec.cluster} still holds workloads ({e}); retry when "
                             f"the cluster answers, or force with the annotation "
                             f"{FORCE_ANNOTATION}=true") from e
            if held:
                busy.append(f"{entry.spec.namespace} on {entry.spec.cluster} holds "
                            f"{describe_workloads(held)}")
        if busy:
            raise Denied("refused: it would remove namespaces that still hold workloads ("
                         + "; ".join(busy) + "); remove the workloads first, or force it "
                         f"(kubeglobe ... --force, or the annotation {FORCE_ANNOTATION}=true)")


def admission_router(*, view: TenancyView, probe: WorkloadProbe) -> APIRouter:
    router = APIRouter(tags=["admission"])

    @router.post(WEBHOOK_PATH)
    async def review(body: dict[str, Any]) -> dict[str, Any]:
        request = body.get("request") or {}
        response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
        try:
            await decide(request, view=view, probe=probe)
        except Denied as e:
            code, reason = (422, "Invalid") if e.invalid else (403, "Forbidden")
            response = {"uid": request.get("uid", ""), "allowed": False,
                        "status": {"code": code, "reason": reason, "message": str(e)}}
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": response}

    return router
