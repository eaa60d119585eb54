"""Local users, their passwords, logins and tokens, kept in the global cluster.

`Accounts` is the one place that reads and writes User resources, their password
Secrets and user tokens. Every write is safe to retry: creating what exists is refused
with a clear message, deleting what is gone succeeds, and sign-in bookkeeping (failed
logins, the lock) is written with the User's resourceVersion so two API server replicas
counting failures at once never lose one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType
from pydantic import ValidationError

from kubeglobe import failures
from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.api.tenancy import GroupSpec, UserSpec, UserStatus
from kubeglobe.hub.accounts.lockout import after_failure, after_success, locked_until, unlocked
from kubeglobe.hub.accounts.passwords import (
    PasswordRejected,
    check_policy,
    hash_password,
    password_secret,
    password_secret_name,
    verify_password,
)
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.tokens import (
    TOKEN_KIND_LABEL,
    TOKEN_SECRET_TYPE,
    TOKEN_USER_LABEL,
    IssuedToken,
    TokenKind,
    label_value,
    read_token_record,
    secret_name,
)
from kubeglobe.hub.tokens import issue_token as make_token
from kubeglobe.kube.microtime import format_time
from kubeglobe.kube.resources import GroupCR, UserCR
from kubeglobe.kube.secrets import secret_text

log = logging.getLogger("kubeglobe.accounts")
SESSION_HOURS = 12
_CONFLICT_RETRIES = 5
BAD_LOGIN = "wrong user name or password"


class AccountError(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UserRecord:
    name: str
    spec: UserSpec
    status: UserStatus
    uid: str
    resource_version: str
    created: str | None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    kind: TokenKind
    name: str
    created: str | None
    expires: str | None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def user_record(obj: Any) -> UserRecord:
    meta = obj.get("metadata") or {}
    raw_status = obj.get("status") or {}
    try:
        status = UserStatus.model_validate(raw_status)
    except ValidationError as e:  # hand-edited bookkeeping: start it afresh
        log.warning("user %s: unreadable status, sign-in bookkeeping starts afresh: %s",
                    meta.get("name"), e)
        failures.count(component="accounts", operation="read user status", error=e)
        status = UserStatus()
    return UserRecord(name=meta["name"], spec=UserSpec.model_validate(obj.get("spec") or {}),
                      status=status, uid=meta.get("uid", ""),
                      resource_version=meta.get("resourceVersion", ""),
                      created=meta.get("creationTimestamp"))


def _token_info(secret: Secret) -> TokenInfo:
    record = read_token_record(secret.data or {})
    meta = secret.metadata
    assert meta is not None and meta.name is not None
    return TokenInfo(id=meta.name.removeprefix("kubeglobe-token-"), user=record.user,
                     kind=record.kind, name=record.name,
                     created=format_time(meta.creationTimestamp)
                     if meta.creationTimestamp else None,
                     expires=format_time(record.expires) if record.expires else None)


class Accounts:
    def __init__(self, hub: AsyncClient) -> None:
        self.hub = hub

    # -- users -------------------------------------------------------------------------
    async def get(self, name: str) -> UserRecord | None:
        found = await missing_ok(self.hub.get(UserCR, name))
        return None if found is None else user_record(found)

    async def require(self, name: str) -> UserRecord:
        user = await self.get(name)
        if user is None:
            raise AccountError(f"user {name} not found", status=404)
        return user

    async def all(self) -> list[UserRecord]:
        return sorted([user_record(o) async for o in self.hub.list(UserCR)],
                      key=lambda u: u.name)

    async def create(self, name: str, spec: UserSpec, password: str | None) -> UserRecord:
        """A User and (if given) its password; nothing is left behind if a step fails."""
        if password is not None:
            try:
                check_policy(password, user=name)
            except PasswordRejected as e:
                raise AccountError(str(e), status=422) from e
        body = {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "User",
                "metadata": {"name": name}, "spec": spec.model_dump(mode="json",
                                                                    exclude_none=True)}
        try:
            created = user_record(await self.hub.create(codecs.from_dict(body)))
        except ApiError as e:
            if e.status.code == 409:
                raise AccountError(f"user {name} already exists; change it with `kubeglobe "
                                   "user update` or pick another name", status=409) from e
            raise AccountError(f"user {name} was not created: {e.status.message}",
                               status=e.status.code or 400) from e
        if password is not None:
            try:
                await self._write_password(created, password)
            except BaseException:  # cleanup only: no User without its password is left
                await self.hub.delete(UserCR, name)  # behind; the error goes on
                raise
        return created

    async def update(self, name: str, changes: dict[str, Any]) -> UserRecord:
        user = await self.require(name)
        merged = {**user.spec.model_dump(mode="json"), **changes}
        try:
            spec = UserSpec.model_validate(merged)
        except ValidationError as e:
            raise AccountError("; ".join(err["msg"] for err in e.errors()), status=422) from e
        patched = await self.hub.patch(UserCR, name, {"spec": spec.model_dump(mode="json")},
                                       patch_type=PatchType.MERGE)
        return user_record(patched)

    async def delete(self, name: str) -> None:
        """Delete the User; its password and tokens go with it (owner references)."""
        await missing_ok(self.hub.delete(UserCR, name))
        for info in await self.tokens(user=name):  # do not wait for the garbage collector
            await self.revoke(info.id)

    async def set_password(self, name: str, password: str) -> None:
        try:
            check_policy(password, user=name)
        except PasswordRejected as e:
            raise AccountError(str(e), status=422) from e
        await self._write_password(await self.require(name), password)

    async def _write_password(self, user: UserRecord, password: str) -> None:
        digest = await asyncio.to_thread(hash_password, password)
        manifest = password_secret(user=user.name, password_hash=digest, owner_uid=user.uid)
        await self.hub.apply(codecs.from_dict(manifest), field_manager="kubeglobe-accounts",
                             force=True)

    async def _password_hash(self, name: str) -> str | None:
        secret = await missing_ok(self.hub.get(Secret, password_secret_name(name),
                                               namespace=SYSTEM_NAMESPACE))
        return None if secret is None else secret_text(secret.data or {}, "argon2")

    async def unlock(self, name: str) -> UserRecord:
        return await self._bookkeep(name, lambda status, _now: unlocked(status))

    async def _bookkeep(self, name: str,
                        change: Callable[[UserStatus, dt.datetime], UserStatus]) -> UserRecord:
        """Write `change(status)` with the resourceVersion read; retry on a conflict."""
        for _ in range(_CONFLICT_RETRIES):
            user = await self.require(name)
            status = change(user.status, _utcnow())
            body = {"metadata": {"resourceVersion": user.resource_version},
                    "status": status.model_dump(mode="json")}
            try:
                patched = await self.hub.patch(UserCR.Status, name, body,
                                               patch_type=PatchType.MERGE)
            except ApiError as e:
                if e.status.code == 409:
                    continue
                raise
            return user_record(patched)
        raise AccountError(f"user {name} is being changed by others; retry", status=409)

    # -- signing in --------------------------------------------------------------------
    async def verify(self, name: str, password: str) -> UserRecord:
        """The user, if `password` is theirs; counts failures and locks the account."""
        user = await self.get(name)
        if user is None:
            await asyncio.to_thread(verify_password, password, None)
            raise AccountError(BAD_LOGIN, status=401)
        if user.spec.disabled:
            raise AccountError(f"account {name} is disabled; a platform admin can enable it "
                               f"(kubeglobe user update {name} --enable)", status=403)
        until = locked_until(user.status, _utcnow())
        if until is not None:
            raise AccountError(
                f"account {name} is locked until {format_time(until)} after "
                f"{len(user.status.failedLogins)} failed logins; try again then, or a "
                f"platform admin can unlock it (kubeglobe user unlock {name})", status=403)
        stored = await self._password_hash(name)
        if not await asyncio.to_thread(verify_password, password, stored):
            after = await self._bookkeep(name, after_failure)
            if locked_until(after.status, _utcnow()) is not None:
                raise AccountError(f"{BAD_LOGIN}; that was failure number "
                                   f"{len(after.status.failedLogins)} within 24 h, so account "
                                   f"{name} is locked for 20 minutes", status=401)
            raise AccountError(BAD_LOGIN, status=401)
        return await self._bookkeep(name, after_success)

    async def login(self, name: str, password: str) -> tuple[IssuedToken, dt.datetime]:
        """A session token for the right password."""
        user = await self.verify(name, password)
        expires = _utcnow() + dt.timedelta(hours=SESSION_HOURS)
        issued = await self._issue(user, kind="session", name="login session", expires=expires)
        return issued, expires

    # -- tokens ------------------------------------------------------------------------
    async def issue_api_token(self, user: UserRecord, *, name: str,
                              expires_in_days: int | None) -> tuple[IssuedToken, dt.datetime |
                                                                    None]:
        if user.spec.disabled:
            raise AccountError(f"account {user.name} is disabled; it gets no tokens",
                               status=403)
        expires = (_utcnow() + dt.timedelta(days=expires_in_days)
                   if expires_in_days else None)
        return await self._issue(user, kind="api", name=name, expires=expires), expires

    async def _issue(self, user: UserRecord, *, kind: TokenKind, name: str,
                     expires: dt.datetime | None) -> IssuedToken:
        issued = make_token(user=user.name, groups=(), kind=kind, name=name, expires=expires,
                            owner_uid=user.uid)
        await self.hub.create(codecs.from_dict(issued.manifest))
        return issued

    async def tokens(self, *, user: str | None) -> list[TokenInfo]:
        """User tokens (session and API), of one user or of all."""
        labels: dict[str, Any] = {TOKEN_KIND_LABEL: ("session", "api")}
        if user is not None:
            labels[TOKEN_USER_LABEL] = label_value(user)
        found = [_token_info(s) async for s in self.hub.list(
            Secret, namespace=SYSTEM_NAMESPACE, labels=labels)]
        return sorted([t for t in found if user is None or t.user == user],
                      key=lambda t: (t.user, t.created or "", t.id))

    async def token(self, token_id: str) -> TokenInfo | None:
        secret = await missing_ok(self.hub.get(Secret, secret_name(token_id),
                                               namespace=SYSTEM_NAMESPACE))
        if secret is None or secret.type != TOKEN_SECRET_TYPE:
            return None
        return _token_info(secret)

    async def revoke(self, token_id: str) -> None:
        await missing_ok(self.hub.delete(Secret, secret_name(token_id),
                                         namespace=SYSTEM_NAMESPACE))

    # -- groups ------------------------------------------------------------------------
    async def groups_of(self, user: str) -> tuple[str, ...]:
        """The Groups that list `user` as a member, by name."""
        names = []
        async for g in self.hub.list(GroupCR):
            try:
                spec = GroupSpec.model_validate(g.get("spec") or {})
            except ValidationError as e:  # one bad Group must not stop sign-ins
                log.warning("group %s is invalid and grants nothing: %s",
                            g["metadata"]["name"], e)
                failures.count(component="accounts", operation="read group", error=e)
                continue
            if user in spec.members:
                names.append(g["metadata"]["name"])
        return tuple(sorted(names))
