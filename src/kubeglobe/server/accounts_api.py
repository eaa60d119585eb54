"""REST for people: login and logout, who am I, API tokens, users and groups.

`POST /api/v1/login` is the only route without a token. Users manage their own tokens
and password; platform admins manage everyone's; platform auditors read everything.
"""


import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    WithJsonSchema,
)

from kubeglobe.api.names import GroupName, UserName
from kubeglobe.api.quantity import not_a_bool
from kubeglobe.api.tenancy import GroupSpec, UserSpec
from kubeglobe.hub.accounts.lockout import locked_until
from kubeglobe.hub.accounts.store import AccountError, Accounts, TokenInfo, UserRecord
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.microtime import format_time
from kubeglobe.kube.resources import GroupCR
from kubeglobe.kube.status import parse_bearer
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.authorize import Authorizer, forbidden
from kubeglobe.server.errors import AUTHENTICATED, BODY, errors
from kubeglobe.server.resources import (
    ResourceList,
    Resources,
    ResourceView,
    invalid,
    resource_view,
)


def _token_id(value: str) -> str:
    if re.fullmatch(r"[0-9a-f]{12}", value) is None:
        raise ValueError(f"{value[:40]!r} is not a token id: an id is 12 hexadecimal digits "
                         "(0-9, a-f), as the ID column of `kubeglobe token list` shows")
    return value


TokenId = Annotated[str, AfterValidator(_token_id), WithJsonSchema({
    "type": "string", "pattern": "^[0-9a-f]{12}$",
    "description": "a token's id: 12 hexadecimal digits (the ID of `kubeglobe token list`)"})]


class LoginRequest(BaseModel):
    username: UserName
    password: str = Field(min_length=1, max_length=1024)


class IssuedTokenView(BaseModel):
    """The token is shown here once; only its hash is kept."""

    token: str
    id: str
    user: str
    kind: str
    name: str
    expires: str | None


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")
    expiresInDays: Annotated[int, Field(ge=1, le=3650), BeforeValidator(not_a_bool)] | None = Field(
        default=None, description="unset: until revoked")


class TokenInfoView(BaseModel):
    id: str
    user: str
    kind: str
    name: str
    created: str | None
    expires: str | None


class TokenList(BaseModel):
    items: list[TokenInfoView]


class WhoAmI(BaseModel):
    user: str
    groups: list[str]
    platformRoles: list[str]
    projectRoles: dict[str, list[str]]
    namespaceRoles: dict[str, list[str]]


class UserView(BaseModel):
    name: str
    spec: UserSpec
    state: str = Field(description="Active, Disabled or Locked")
    lockedUntil: str | None = None
    failedLogins: int = 0
    lastLoginTime: str | None = None
    created: str | None = None


class UserList(BaseModel):
    items: list[UserView]


class UserCreate(BaseModel):
    name: UserName
    password: str | None = Field(default=None, max_length=1024, description="unset: the "
                                 "user cannot log in until one is set")
    displayName: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)


class UserUpdate(BaseModel):
    displayName: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    disabled: bool | None = None


class PasswordChange(BaseModel):
    password: str = Field(max_length=1024)
    currentPassword: str | None = Field(default=None, max_length=1024,
                                        description="needed to change your own password")


class GroupCreate(BaseModel):
    name: GroupName
    spec: GroupSpec = Field(default_factory=GroupSpec)


def _token_view(t: TokenInfo) -> TokenInfoView:
    return TokenInfoView(id=t.id, user=t.user, kind=t.kind, name=t.name, created=t.created,
                         expires=t.expires)


def user_view(u: UserRecord, now: dt.datetime) -> UserView:
    until = locked_until(u.status, now)
    state = "Disabled" if u.spec.disabled else ("Locked" if until is not None else "Active")
    return UserView(name=u.name, spec=u.spec, state=state,
                    lockedUntil=format_time(until) if until else None,
                    failedLogins=len(u.status.failedLogins),
                    lastLoginTime=u.status.lastLoginTime, created=u.created)


@contextmanager
def _account_errors() -> Iterator[None]:
    try:
        yield
    except AccountError as e:
        # A status the global cluster gave (a user it would not create) is its own: its
        # failures are a bad gateway here, not an error of ours.
        raise HTTPException(e.status if e.status < 500 else 502, detail=str(e)) from e


def accounts_router(*, authenticate: TokenAuthenticator, authorize: Authorizer) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=errors(*AUTHENTICATED))
    accounts: Accounts = authenticate.accounts
    groups = Resources(accounts.hub, GroupCR, "Group")
    Caller = Annotated[Identity, Depends(authenticate)]

    @router.post("/login", response_model=IssuedTokenView,
                 responses=errors(*BODY, 403, 409))
    async def login(body: LoginRequest) -> IssuedTokenView:
        """A session token for a local user (5 failures in 24 h lock it for 20 minutes)."""
        with _account_errors():
            issued, expires = await accounts.login(body.username, body.password)
        return IssuedTokenView(token=issued.token,
                               id=issued.secret_name.removeprefix("kubeglobe-token-"),
                               user=body.username, kind="session", name="login session",
                               expires=format_time(expires))

    @router.post("/logout", status_code=204, responses=errors(409))
    async def logout(identity: Caller, request: Request) -> None:
        """End this session (an API token used here is revoked the same way)."""
        if identity.token_kind == "system" or identity.token_id is None:
            raise HTTPException(409, detail="this is a system token; revoke it by deleting "
                                "its Secret, not by logging out")
        await accounts.revoke(identity.token_id)
        authenticate.forget(parse_bearer(request.headers.get("authorization", "")) or "")

    @router.get("/whoami", response_model=WhoAmI)
    async def whoami(identity: Caller) -> WhoAmI:
        access = await authorize.access(identity)
        return WhoAmI(user=identity.user, groups=list(identity.groups),
                      platformRoles=sorted(access.platform),
                      projectRoles={k: sorted(v) for k, v in access.projects.items()},
                      namespaceRoles={k: sorted(v) for k, v in access.namespaces.items()})

    # -- tokens ------------------------------------------------------------------------
    @router.get("/tokens", response_model=TokenList, responses=errors(403, 422))
    async def list_tokens(identity: Caller, user: UserName | None = None,
                          all_users: bool = False) -> TokenList:
        """Your tokens; an admin or auditor may ask for another user's, or everyone's."""
        wanted = None if all_users else (user or identity.user)
        if wanted != identity.user:
            await authorize.require_reader(identity, "read other users' tokens")
        return TokenList(items=[_token_view(t) for t in await accounts.tokens(user=wanted)])

    @router.post("/tokens", response_model=IssuedTokenView, status_code=201,
                 responses=errors(*BODY, 403, 404, 409))
    async def create_token(body: TokenRequest, identity: Caller) -> IssuedTokenView:
        """A new API token for yourself, shown once."""
        if identity.token_kind == "system":
            raise HTTPException(409, detail=f"{identity.user} is a system identity, not a "
                                "local user; create a user and log in as them for API tokens")
        with _account_errors():
            user = await accounts.require(identity.user)
            issued, expires = await accounts.issue_api_token(
                user, name=body.name, expires_in_days=body.expiresInDays)
        return IssuedTokenView(token=issued.token,
                               id=issued.secret_name.removeprefix("kubeglobe-token-"),
                               user=user.name, kind="api", name=body.name,
                               expires=format_time(expires) if expires else None)

    @router.delete("/tokens/{token_id}", status_code=204, responses=errors(403, 422))
    async def revoke_token(token_id: TokenId, identity: Caller) -> None:
        """Revoke a token: yours, or anyone's if you are a platform admin. Revoking one
        that is already gone succeeds."""
        info = await accounts.token(token_id)
        if info is None:
            return
        if info.user != identity.user or info.kind == "system":
            await authorize.require_admin(identity, "revoke other users' tokens")
        await accounts.revoke(token_id)

    # -- users -------------------------------------------------------------------------
    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @router.get("/users", response_model=UserList, responses=errors(403))
    async def list_users(identity: Caller) -> UserList:
        await authorize.require_reader(identity, "list users")
        return UserList(items=[user_view(u, now()) for u in await accounts.all()])

    @router.get("/users/{name}", response_model=UserView, responses=errors(403, 404, 422))
    async def get_user(name: UserName, identity: Caller) -> UserView:
        if name != identity.user:
            await authorize.require_reader(identity, f"read user {name}")
        with _account_errors():
            return user_view(await accounts.require(name), now())

    @router.post("/users", response_model=UserView, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_user(body: UserCreate, identity: Caller) -> UserView:
        await authorize.require_admin(identity, "create users")
        try:
            spec = UserSpec(displayName=body.displayName, email=body.email)
            with _account_errors():
                return user_view(await accounts.create(body.name, spec, body.password), now())
        except ValidationError as e:
            raise invalid(e) from e

    @router.patch("/users/{name}", response_model=UserView,
                  responses=errors(*BODY, 403, 404))
    async def update_user(name: UserName, body: UserUpdate, identity: Caller) -> UserView:
        """Change display name or e-mail (yourself or an admin); enable or disable (an
        admin: a disabled user's sessions and tokens stop working at once)."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        if name != identity.user or "disabled" in changes:
            await authorize.require_admin(identity, f"change user {name}")
        with _account_errors():
            return user_view(await accounts.update(name, changes), now())

    @router.put("/users/{name}/password", status_code=204,
                responses=errors(*BODY, 403, 404, 409))
    async def set_password(name: UserName, body: PasswordChange, identity: Caller) -> None:
        """Your own (with the current one: a wrong one is a 401 and counts as a failed
        login), or anyone's as a platform admin."""
        access = await authorize.access(identity)
        if not access.admin and name != identity.user:
            raise forbidden(identity, f"set user {name}'s password", "the platform-admin role")
        with _account_errors():
            if not access.admin:
                await accounts.verify(name, body.currentPassword or "")
            await accounts.set_password(name, body.password)

    @router.post("/users/{name}/unlock", response_model=UserView,
                 responses=errors(403, 404, 409, 422))
    async def unlock_user(name: UserName, identity: Caller) -> UserView:
        await authorize.require_admin(identity, "unlock users")
        with _account_errors():
            return user_view(await accounts.unlock(name), now())

    @router.delete("/users/{name}", status_code=204, responses=errors(403, 422))
    async def delete_user(name: UserName, identity: Caller) -> None:
        """The user, their password and tokens; deleting one already gone succeeds."""
        await authorize.require_admin(identity, "delete users")
        await accounts.delete(name)

    # -- groups ------------------------------------------------------------------------
    @router.get("/groups", response_model=ResourceList, responses=errors(403))
    async def list_groups(identity: Caller) -> ResourceList:
        await authorize.require_reader(identity, "list groups")
        return ResourceList(items=[resource_view(g) for g in await groups.all()])

    @router.get("/groups/{name}", response_model=ResourceView,
                responses=errors(403, 404, 422))
    async def get_group(name: GroupName, identity: Caller) -> ResourceView:
        view = resource_view(await groups.get(name))
        if identity.user not in view.spec.get("members", []):
            await authorize.require_reader(identity, f"read group {name}")
        return view

    @router.post("/groups", response_model=ResourceView, status_code=201,
                 responses=errors(*BODY, 403, 409))
    async def create_group(body: GroupCreate, identity: Caller) -> ResourceView:
        await authorize.require_admin(identity, "create groups")
        return resource_view(await groups.create(body.name, body.spec))

    @router.put("/groups/{name}", response_model=ResourceView,
                responses=errors(*BODY, 403, 404))
    async def replace_group(name: GroupName, body: GroupSpec, identity: Caller) -> ResourceView:
        await authorize.require_admin(identity, "change groups")
        return resource_view(await groups.replace_spec(name, body))

    @router.delete("/groups/{name}", status_code=204, responses=errors(403, 422))
    async def delete_group(name: GroupName, identity: Caller) -> None:
        await authorize.require_admin(identity, "delete groups")
        await groups.delete(name)

    return router
