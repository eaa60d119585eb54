"""The platform API's authorization: an `Access` per caller, from the role bindings.

Bindings and project namespaces are read at most once a second (shared by all callers),
so a new or removed binding takes effect within that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import HTTPException
from lightkube import AsyncClient
from pydantic import ValidationError

from kubeglobe.api.tenancy import PlatformRoleBindingSpec
from kubeglobe.hub.tenancy.access import Access, access_for
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.resources import PlatformRoleBindingCR, ProjectNamespaceCR
from kubeglobe.kube.ttl import TtlCache

CACHE_SECONDS = 1.0
_Snapshot = tuple[list[PlatformRoleBindingSpec], dict[str, str]]


def forbidden(identity: Identity | Access, action: str, needs: str) -> HTTPException:
    return HTTPException(403, detail=f"user {identity.user} may not {action}; that needs "
                         f"{needs}")


@dataclass(eq=False)
class Authorizer:
    hub: AsyncClient
    _cache: TtlCache[str, _Snapshot] = field(default_factory=lambda: TtlCache(CACHE_SECONDS))

    async def _read(self) -> _Snapshot:
        bindings = []
        async for b in self.hub.list(PlatformRoleBindingCR):
            try:
                bindings.append(PlatformRoleBindingSpec.model_validate(b.get("spec") or {}))
            except ValidationError:
                continue  # invalid bindings grant nothing
        namespaces = {n["metadata"]["name"]: (n.get("spec") or {}).get("project", "")
                      async for n in self.hub.list(ProjectNamespaceCR)}
        return bindings, namespaces

    async def access(self, identity: Identity) -> Access:
        bindings, namespaces = await self._cache.get("all", self._read)
        return access_for(identity, bindings=bindings, namespace_projects=namespaces)

    async def require_admin(self, identity: Identity, action: str) -> Access:
        access = await self.access(identity)
        if not access.admin:
            raise forbidden(identity, action, "the platform-admin role")
        return access

    async def require_reader(self, identity: Identity, action: str) -> Access:
        access = await self.access(identity)
        if not access.reads_all:
            raise forbidden(identity, action, "the platform-admin or platform-auditor role")
        return access
