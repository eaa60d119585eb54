"""Who is calling: bearer tokens checked against their Secrets in the global cluster.

A verified token is remembered for `CACHE_SECONDS`, so a busy client costs the hub a
few reads per second at most, and a revoked token, a deleted or disabled user, or a
changed group membership takes effect within that time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.accounts.store import Accounts
from kubeglobe.hub.tokens import (
    TOKEN_SECRET_TYPE,
    USER_TOKEN_KINDS,
    Identity,
    check_token,
    parse_token,
    secret_name,
)
from kubeglobe.kube.status import parse_bearer
from kubeglobe.kube.ttl import TtlCache

CACHE_SECONDS = 1.0


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


@dataclass(eq=False)  # a FastAPI dependency: hashed by identity
class TokenAuthenticator:
    accounts: Accounts
    _cache: TtlCache[str, Identity] = field(default_factory=lambda: TtlCache(CACHE_SECONDS))

    @property
    def hub(self) -> AsyncClient:
        return self.accounts.hub

    async def identify(self, token: str) -> Identity:
        return await self._cache.get(token, lambda: self._verify(token))

    def forget(self, token: str) -> None:
        self._cache.forget(token)

    async def _verify(self, token: str) -> Identity:
        parsed = parse_token(token)
        if parsed is None:
            raise unauthorized("malformed token; log in again with `kubeglobe login`")
        token_id, secret_part = parsed
        try:
            secret = await self.hub.get(Secret, secret_name(token_id), namespace=SYSTEM_NAMESPACE)
        except ApiError as e:
            if e.status.code == 404:
                raise unauthorized("unknown or revoked token") from e
            raise HTTPException(status_code=503, detail="cannot verify tokens now") from e
        record = (check_token(secret_part=secret_part, data=secret.data or {})
                  if secret.type == TOKEN_SECRET_TYPE else None)
        if record is None:
            raise unauthorized("unknown or revoked token")
        if record.expired(dt.datetime.now(dt.UTC)):
            raise unauthorized("the token has expired; log in again with `kubeglobe login`")
        groups = record.groups
        if record.kind in USER_TOKEN_KINDS:
            user = await self.accounts.get(record.user)
            if user is None:
                raise unauthorized(f"user {record.user} no longer exists")
            if user.spec.disabled:
                raise unauthorized(f"user {record.user} is disabled")
            groups = await self.accounts.groups_of(record.user)
        return Identity(user=record.user, groups=groups, token_id=token_id,
                        token_kind=record.kind)

    async def __call__(self, request: Request) -> Identity:
        token = parse_bearer(request.headers.get("authorization", ""))
        if token is None:
            raise unauthorized("no bearer token; pass `Authorization: Bearer <token>`")
        return await self.identify(token)
