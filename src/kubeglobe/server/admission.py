"""The validating admission webhook the global cluster calls for tenancy resources.

The rules are pure (hub/tenancy/admission.py); this module reads what they need: the
projects and project namespaces, and, for a deletion that would remove namespaces,
whether those still hold workloads on their clusters (reached as the controller does).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.api.tenancy import ProjectNamespaceSpec, ProjectSpec
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable, PlatformRoute
from kubeglobe.hub.install import CONTROLLER_TOKEN_SECRET, WEBHOOK_PATH
from kubeglobe.hub.missing import missing_ok
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
    describe_workloads,
    forced,
    platform_placed,
    workloads_in,
)
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.informer import Informer
from kubeglobe.kube.resources import ProjectCR, ProjectNamespaceCR
from kubeglobe.kube.secrets import secret_text
from kubeglobe.server.errors import BODY, errors

log = logging.getLogger("kubeglobe.admission")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # the apiserver sends more than we read


class ReviewedMeta(_Open):
    name: str = ""
    annotations: dict[str, str] | None = None
    deletionTimestamp: str | None = None


class ReviewedObject(_Open):
    metadata: ReviewedMeta = Field(default_factory=ReviewedMeta)
    spec: dict[str, Any] | None = None


class ReviewedKind(_Open):
    group: str = ""
    version: str = ""
    kind: str = ""


class AdmissionRequest(_Open):
    uid: str
    kind: ReviewedKind = Field(default_factory=ReviewedKind)
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    object: ReviewedObject | None = None
    oldObject: ReviewedObject | None = None


class AdmissionReview(_Open):
    """What the global cluster's apiserver sends (admission.k8s.io/v1); the objects in
    it have passed the CRD's schema, their specs not yet our models."""

    apiVersion: str = "admission.k8s.io/v1"
    kind: str = "AdmissionReview"
    request: AdmissionRequest


class ReviewStatus(BaseModel):
    code: int
    reason: str
    message: str


class ReviewResponse(BaseModel):
    uid: str
    allowed: bool
    status: ReviewStatus | None = None


class ReviewAnswer(BaseModel):
    apiVersion: str = "admission.k8s.io/v1"
    kind: str = "AdmissionReview"
    response: ReviewResponse


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
        cluster = await (await self._cluster_access()).client_of(entry.spec.cluster)
        if cluster is None or not await platform_placed(cluster.kube, entry.spec):
            return {}
        return await workloads_in(cluster.kube, entry.spec.namespace)


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
            obj = await missing_ok(self.hub.get(ProjectCR, name))
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
        name = (obj.get("metadata") or {}).get("name", "")
        if kind == "ProjectNamespace":
            check_namespace(name, spec, project=await view.project(spec.project),
                            others=await view.entries())
        elif kind == "Project":
            check_project(name, spec, others=await view.entries())
    if kind == "Project" and operation == "UPDATE" and old is not None:
        _check_stored_project(obj, old)
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


def _check_stored_project(obj: dict[str, Any], old: dict[str, Any]) -> None:
    """An update takes namespaces off the clusters its old spec lists and the new one
    does not: an old spec that is not a valid ProjectSpec (written while the webhook was
    not installed) cannot tell which, so the update needs forcing."""
    meta = obj.get("metadata") or {}
    if forced(meta.get("annotations")):
        return
    try:
        ProjectSpec.model_validate(old.get("spec") or {})
    except ValidationError as e:
        raise Denied(f"the stored spec of project {meta.get('name', '')} is invalid "
                     f"({e.error_count()} problems), so which namespaces this update removes "
                     f"cannot be told; force it with the annotation {FORCE_ANNOTATION}=true"
                     ) from e


def admission_router(*, view: TenancyView, probe: WorkloadProbe) -> APIRouter:
    router = APIRouter(tags=["admission"])

    @router.post(WEBHOOK_PATH, response_model=ReviewAnswer, response_model_exclude_none=True,
                 responses=errors(*BODY))
    async def review(body: AdmissionReview) -> ReviewAnswer:
        """Called by the global cluster for every write of a tenancy resource."""
        request = body.request
        answer = ReviewResponse(uid=request.uid, allowed=True)
        try:
            await decide(request.model_dump(mode="json"), view=view, probe=probe)
        except Denied as e:
            code, reason = (422, "Invalid") if e.invalid else (403, "Forbidden")
            answer = ReviewResponse(uid=request.uid, allowed=False, status=ReviewStatus(
                code=code, reason=reason, message=str(e)))
        return ReviewAnswer(response=answer)

    return router
