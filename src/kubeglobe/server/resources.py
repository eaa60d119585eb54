"""Generic REST views of the platform's cluster-scoped resources (groups, projects,
project namespaces, role bindings): the resource is the truth, the view adds nothing.
The global cluster's refusals carry its own message, so REST, CLI and kubectl agree.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import GlobalResource
from lightkube.types import PatchType
from pydantic import BaseModel, Field, ValidationError

from kubeglobe.api.meta import API_VERSION, FIELD_MANAGER


class ResourceView(BaseModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    status: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None
    deleting: bool = False


class ResourceList(BaseModel):
    items: list[ResourceView]


def resource_view(obj: Any) -> ResourceView:
    meta = obj.get("metadata") or {}
    return ResourceView(name=meta.get("name", ""), labels=meta.get("labels") or {},
                        annotations=meta.get("annotations") or {}, spec=obj.get("spec") or {},
                        status=obj.get("status") or {}, created=meta.get("creationTimestamp"),
                        deleting=bool(meta.get("deletionTimestamp")))


def invalid(e: ValidationError) -> HTTPException:
    return HTTPException(422, detail="; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
        for err in e.errors()))


def api_error(e: ApiError, kind: str, name: str) -> HTTPException:
    code = e.status.code or 500
    if code == 404:
        return HTTPException(404, detail=f"{kind} {name} not found")
    if code == 409:
        return HTTPException(409, detail=f"{kind} {name} already exists or changed meanwhile: "
                             f"{e.status.message}")
    return HTTPException(code if 400 <= code < 500 else 502, detail=e.status.message or str(e))


class Resources:
    """Read and write one kind through the global cluster's API."""

    def __init__(self, hub: AsyncClient, res: type[GlobalResource], kind: str) -> None:
        self.hub = hub
        self.res = res
        self.kind = kind

    async def all(self) -> list[Any]:
        return sorted([o async for o in self.hub.list(self.res)],
                      key=lambda o: o["metadata"]["name"])

    async def get(self, name: str) -> Any:
        try:
            return await self.hub.get(self.res, name)
        except ApiError as e:
            raise api_error(e, self.kind, name) from e

    async def create(self, name: str, spec: BaseModel,
                     annotations: dict[str, str] | None = None) -> Any:
        body = {"apiVersion": API_VERSION, "kind": self.kind,
                "metadata": {"name": name, "annotations": annotations or {}},
                "spec": spec.model_dump(mode="json", exclude_none=True)}
        try:
            return await self.hub.create(codecs.from_dict(body), field_manager=FIELD_MANAGER)
        except ApiError as e:
            raise api_error(e, self.kind, name) from e

    async def replace_spec(self, name: str, spec: BaseModel) -> Any:
        try:
            # null in a merge patch removes the field: unset means unset
            return await self.hub.patch(self.res, name, {"spec": spec.model_dump(mode="json")},
                                        patch_type=PatchType.MERGE)
        except ApiError as e:
            raise api_error(e, self.kind, name) from e

    async def annotate(self, name: str, annotations: dict[str, str]) -> None:
        try:
            await self.hub.patch(self.res, name, {"metadata": {"annotations": annotations}},
                                 patch_type=PatchType.MERGE)
        except ApiError as e:
            raise api_error(e, self.kind, name) from e

    async def delete(self, name: str) -> None:
        """Deleting what is already gone succeeds (safe to retry)."""
        try:
            await self.hub.delete(self.res, name)
        except ApiError as e:
            if e.status.code != 404:
                raise api_error(e, self.kind, name) from e
