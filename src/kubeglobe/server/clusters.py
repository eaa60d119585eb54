"""REST views of Cluster resources: `/api/v1/clusters`.

The resources in the global cluster are the truth; these routes read and write them
and add nothing of their own, so kubectl, the CLI and the REST API always agree.
"""


from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from lightkube.core.exceptions import ApiError
from pydantic import BaseModel, Field

from kubeglobe.api.cluster import ClusterSpec, ClusterStatus
from kubeglobe.hub.onboarding import OnboardingError, import_cluster, unregister_cluster
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.server.auth import TokenAuthenticator, require_platform_admin


class ClusterView(BaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: ClusterSpec
    status: ClusterStatus
    created: str | None = None


class ClusterList(BaseModel):
    items: list[ClusterView]


class ImportRequest(BaseModel):
    name: str
    mode: Literal["import"] = "import"
    kubeconfig: str = Field(description="the cluster's kubeconfig (YAML text)")
    displayName: str | None = None


def view(obj: dict[str, Any]) -> ClusterView:
    meta = obj.get("metadata") or {}
    status = {k: v for k, v in (obj.get("status") or {}).items()
              if k in ClusterStatus.model_fields}
    return ClusterView(
        name=meta.get("name", ""),
        labels=meta.get("labels") or {},
        spec=ClusterSpec.model_validate(obj.get("spec") or {}),
        status=ClusterStatus.model_validate(status),
        created=meta.get("creationTimestamp"),
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return data


def cluster_router(*, authenticate: TokenAuthenticator) -> APIRouter:
    router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"])
    Caller = Annotated[Identity, Depends(authenticate)]

    @router.get("", response_model=ClusterList)
    async def list_clusters(identity: Caller) -> ClusterList:
        items = [view(_as_dict(o)) async for o in authenticate.hub.list(ClusterCR)]
        return ClusterList(items=sorted(items, key=lambda c: c.name))

    @router.get("/{name}", response_model=ClusterView)
    async def get_cluster(name: str, identity: Caller) -> ClusterView:
        try:
            return view(_as_dict(await authenticate.hub.get(ClusterCR, name)))
        except ApiError as e:
            if e.status.code == 404:
                raise HTTPException(404, detail=f"cluster {name} not found") from e
            raise

    @router.post("", response_model=ClusterView, status_code=201)
    async def create_cluster(body: ImportRequest,
                             identity: Caller) -> ClusterView:
        require_platform_admin(identity)
        try:
            created = await import_cluster(hub=authenticate.hub, name=body.name,
                                           kubeconfig=body.kubeconfig.encode(),
                                           display_name=body.displayName)
        except OnboardingError as e:
            raise HTTPException(e.status, detail=str(e)) from e
        return view(created)

    @router.delete("/{name}", status_code=202)
    async def delete_cluster(name: str, identity: Caller) -> dict[str, str]:
        require_platform_admin(identity)
        try:
            await unregister_cluster(hub=authenticate.hub, name=name)
        except OnboardingError as e:
            raise HTTPException(e.status, detail=str(e)) from e
        return {"status": f"cluster {name} is being unregistered"}

    return router
