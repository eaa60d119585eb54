"""REST views of Cluster resources: `/api/v1/clusters`.

The resources in the global cluster are the truth; these routes read and write them
and add nothing of their own, so kubectl, the CLI and the REST API always agree.
"""


import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, ValidationError

from kubeglobe.api.cluster import ClusterSpec, ClusterStatus
from kubeglobe.api.names import ClusterName
from kubeglobe.api.quantity import WholeNumber
from kubeglobe.failures import caught
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.onboarding import OnboardingError, import_cluster, unregister_cluster
from kubeglobe.hub.registration import create_registered_cluster, issue_bootstrap_token
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.authorize import Authorizer
from kubeglobe.server.errors import AUTHENTICATED, BODY, Accepted, errors

log = logging.getLogger("kubeglobe.clusters")


class ClusterView(BaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    spec: ClusterSpec
    status: ClusterStatus
    created: str | None = None


class ClusterList(BaseModel):
    items: list[ClusterView]


class CreateRequest(BaseModel):
    name: ClusterName
    mode: Literal["import", "register"] = "import"
    kubeconfig: str | None = Field(default=None,
                                   description="import: the cluster's kubeconfig (YAML text)")
    displayName: str | None = Field(default=None, max_length=256)


class Registration(BaseModel):
    """What starts the agent of a registered cluster; the token is shown only here."""

    cluster: ClusterView
    bootstrapToken: str
    expiresInHours: WholeNumber = 24
    manifest: str = Field(description="apply to the workload cluster: kubectl apply -f -")
    command: str


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


def cluster_router(*, authenticate: TokenAuthenticator, authorize: Authorizer,
                   registration: Callable[[ClusterView, str], Registration]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"],
                       responses=errors(*AUTHENTICATED))
    Caller = Annotated[Identity, Depends(authenticate)]

    async def read(name: str) -> ClusterView:
        found = await missing_ok(authenticate.hub.get(ClusterCR, name))
        if found is None:  # the app answers the global cluster's other refusals
            raise HTTPException(404, detail=f"cluster {name} not found")
        try:
            return view(_as_dict(found))
        except ValidationError as e:  # written with kubectl past the API's checks
            raise HTTPException(409, detail=f"cluster {name} has an invalid spec (fix it with "
                                f"kubectl edit cluster {name}): {e.errors()[0]['msg']}") from e

    @router.get("", response_model=ClusterList)
    async def list_clusters(identity: Caller) -> ClusterList:
        items = []
        async for o in authenticate.hub.list(ClusterCR):
            try:
                items.append(view(_as_dict(o)))
            except ValidationError as e:  # one bad object must not hide every cluster
                caught(log, component="server", operation="list clusters", error=e)
        return ClusterList(items=sorted(items, key=lambda c: c.name))

    @router.get("/{name}", response_model=ClusterView, responses=errors(404, 409, 422))
    async def get_cluster(name: ClusterName, identity: Caller) -> ClusterView:
        return await read(name)

    @router.post("", response_model=ClusterView | Registration, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_cluster(body: CreateRequest, identity: Caller) -> ClusterView | Registration:
        """Import a cluster (the hub dials it) or register one (its agent dials the hub)."""
        await authorize.require_admin(identity, "add clusters")
        try:
            if body.mode == "register":
                created, token = await create_registered_cluster(
                    hub=authenticate.hub, name=body.name, display_name=body.displayName)
                return registration(view(created), token)
            if not body.kubeconfig:
                raise OnboardingError("mode import needs the cluster's kubeconfig", status=422)
            imported = await import_cluster(hub=authenticate.hub, name=body.name,
                                            kubeconfig=body.kubeconfig.encode(),
                                            display_name=body.displayName)
        except OnboardingError as e:
            raise HTTPException(e.status, detail=str(e)) from e
        return view(imported)

    @router.post("/{name}/bootstrap-token", response_model=Registration, status_code=201,
                 responses=errors(403, 404, 409, 422))
    async def new_bootstrap_token(name: ClusterName, identity: Caller) -> Registration:
        """A new one-time token for a registered cluster's agent (the old one stops working)."""
        await authorize.require_admin(identity, "issue bootstrap tokens")
        cluster = await read(name)
        if cluster.spec.mode != "register":
            raise HTTPException(409, detail=f"cluster {name} is imported; it has no agent")
        token = await issue_bootstrap_token(hub=authenticate.hub, cluster=name)
        return registration(cluster, token)

    @router.delete("/{name}", status_code=202, response_model=Accepted,
                   responses=errors(403, 404, 422))
    async def delete_cluster(name: ClusterName, identity: Caller) -> Accepted:
        await authorize.require_admin(identity, "unregister clusters")
        try:
            await unregister_cluster(hub=authenticate.hub, name=name)
        except OnboardingError as e:
            raise HTTPException(e.status, detail=str(e)) from e
        return Accepted(status=f"cluster {name} is being unregistered")

    return router
