"""Tenancy resources: users, groups, platform role bindings, projects and their namespaces.

All cluster-scoped in the global cluster. Which scopes a role allows is checked here,
once, so every writer (REST, CLI, kubectl via the controller) agrees.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from kubeglobe.api.cluster import Model
from kubeglobe.api.quantity import WholeNumber, parse_quantity

Role = Literal["platform-admin", "platform-auditor", "project-admin", "developer", "viewer"]
PodSecurity = Literal["privileged", "baseline", "restricted"]
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "platform-admin": ("platform",),
    "platform-auditor": ("platform",),
    "project-admin": ("project",),
    "developer": ("project", "namespace"),
    "viewer": ("project", "namespace"),
}


class Quota(Model):
    """Limits per cluster; a missing entry means unlimited."""

    cpu: str | None = Field(default=None, description="e.g. 4 or 500m")
    memory: str | None = Field(default=None, description="e.g. 8Gi")
    storage: str | None = Field(default=None, description="requests.storage, e.g. 100Gi")
    persistentvolumeclaims: WholeNumber | None = None
    pods: WholeNumber | None = None

    @field_validator("cpu", "memory", "storage")
    @classmethod
    def _quantity(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            parsed = parse_quantity(value)
        except ValueError:
            parsed = -1.0
        if parsed < 0:
            raise ValueError(f"{info.field_name} {value!r} is not a quantity; write it as "
                             "Kubernetes does, e.g. 500m or 2 (cpu), 512Mi or 8Gi (memory)")
        return value


class ProjectCluster(Model):
    name: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    quota: Quota = Field(default_factory=Quota)


class ProjectSpec(Model):
    displayName: str | None = Field(default=None, max_length=256)
    clusters: list[ProjectCluster] = Field(default_factory=list)

    @model_validator(mode="after")
    def _clusters_once(self) -> ProjectSpec:
        names = [c.name for c in self.clusters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"clusters listed twice: {', '.join(twice)}; list each once")
        return self


class LimitDefaults(Model):
    """Container defaults applied by a LimitRange."""

    defaultRequest: dict[str, str] = Field(default_factory=dict)
    default: dict[str, str] = Field(default_factory=dict)


class ProjectNamespaceSpec(Model):
    project: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    cluster: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    namespace: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    quota: Quota = Field(default_factory=Quota)
    limits: LimitDefaults | None = None
    podSecurity: PodSecurity = "baseline"

    @model_validator(mode="after")
    def _prefixed(self) -> ProjectNamespaceSpec:
        if not self.namespace.startswith(f"{self.project}-"):
            raise ValueError(f"namespace {self.namespace!r} must start with its project's name "
                             f"and a dash: {self.project}-...")
        return self


class UserSpec(Model):
    displayName: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    disabled: bool = False


class GroupSpec(Model):
    members: list[str] = Field(default_factory=list)


class Subject(Model):
    kind: Literal["User", "Group"]
    name: str = Field(min_length=1, max_length=253)


class BindingScope(Model):
    """Neither field: the whole platform. `project`: that project. `namespace` (the name
    of a ProjectNamespace resource): that namespace only."""

    project: str | None = None
    namespace: str | None = None

    @property
    def kind(self) -> str:
        if self.namespace is not None:
            return "namespace"
        return "project" if self.project is not None else "platform"


class PlatformRoleBindingSpec(Model):
    role: Role
    subject: Subject
    scope: BindingScope = Field(default_factory=BindingScope)

    @model_validator(mode="after")
    def _scope_fits_role(self) -> PlatformRoleBindingSpec:
        allowed = ROLE_SCOPES[self.role]
        if self.scope.project is not None and self.scope.namespace is not None:
            raise ValueError("scope takes a project or a namespace, not both")
        if self.scope.kind not in allowed:
            raise ValueError(f"role {self.role} is bound at {' or '.join(allowed)} scope, "
                             f"not at {self.scope.kind} scope")
        return self


class ProjectResource(Model):
    spec: ProjectSpec


class ProjectNamespaceStatus(Model):
    """Accepted: it fits its project and is kept on its cluster. Rejected: it is not, and
    `message` says why (with the quota numbers when it does not fit)."""

    phase: Literal["Accepted", "Rejected"] | None = None
    message: str | None = None


class ProjectNamespaceResource(Model):
    spec: ProjectNamespaceSpec
    status: ProjectNamespaceStatus | None = None


class UserStatus(Model):
    """Sign-in bookkeeping, written only by the platform API's login path.

    `failedLogins` holds the times of recent failed logins (the last 24 h); 5 of them
    lock the account until `lockedUntil`.
    """

    failedLogins: list[str] = Field(default_factory=list)
    lockedUntil: str | None = None
    lastLoginTime: str | None = None


class UserResource(Model):
    spec: UserSpec
    status: UserStatus | None = None


class GroupResource(Model):
    spec: GroupSpec


class PlatformRoleBindingResource(Model):
    spec: PlatformRoleBindingSpec
