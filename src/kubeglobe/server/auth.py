"""Who is calling: bearer tokens checked against their Secrets in the global cluster.

A verified token is remembered for `CACHE_SECONDS`, so a busy client costs the hub one
Secret read per second at most, and a revoked token stops working within that time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.tokens import (
    PLATFORM_ADMINS,
    TOKEN_SECRET_TYPE,
    Identity,
    check_token,
    parse_token,
    secret_name,
)
from kubeglobe.kube.ttl import TtlCache

CACHE_SECONDS = 1.0


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


@dataclass(eq=False)  # a FastAPI dependency: hashed by identity
class TokenAuthenticator:
    hub: AsyncClient
    _cache: TtlCache[str, Identity] = field(default_factory=lambda: TtlCache(CACHE_SECONDS))

    async def identify(self, token: str) -> Identity:
        return await self._cache.get(token, lambda: self._verify(token))

    async def _verify(self, token: str) -> Identity:
        parsed = parse_token(token)
        if parsed is None:
            raise _unauthorized("malformed token; log in again with `kubeglobe login`")
        token_id, secret_part = parsed
        try:
            secret = await self.hub.get(Secret, secret_name(token_id), namespace=SYSTEM_NAMESPACE)
        except ApiError as e:
            if e.status.code == 404:
                raise _unauthorized("unknown or revoked token") from e
            raise HTTPException(status_code=503, detail="cannot verify tokens now") from e
        identity = None
        if secret.type == TOKEN_SECRET_TYPE:
            identity = check_token(secret_part=secret_part, data=secret.data or {})
        if identity is None:
            raise _unauthorized("unknown or revoked token")
        return identity

    async def __call__(self, request: Request) -> Identity:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("no bearer token; pass `Authorization: Bearer <token>`")
        return await self.identify(token.strip())


def require_platform_admin(identity: Identity) -> None:
    if PLATFORM_ADMINS not in identity.groups:
        raise HTTPException(status_code=403,
                            detail=f"user {identity.user} is not a platform admin")
