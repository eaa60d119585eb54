"""What a platform identity may do in the platform API (pure).

`access_for` folds the PlatformRoleBindings that name a user (directly or through one
of their groups) into an `Access`; its methods answer the platform API's questions.
The bootstrap admin and the controller hold platform-admin through their group.

- platform-admin: everything.
- platform-auditor: reads everything, changes nothing.
- project-admin: reads its project; manages its namespaces and its role bindings
  (project-admin, developer, viewer at the project's or its namespaces' scope).
- developer, viewer: read their project (or just their namespace) and its namespaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubeglobe.api.meta import PLATFORM_ADMINS
from kubeglobe.api.tenancy import PlatformRoleBindingSpec
from kubeglobe.hub.tokens import Identity

PROJECT_ROLES = ("project-admin", "developer", "viewer")


@dataclass(frozen=True)
class Access:
    user: str
    platform: frozenset[str] = frozenset()
    projects: Mapping[str, frozenset[str]] = field(default_factory=dict)
    namespaces: Mapping[str, frozenset[str]] = field(default_factory=dict)
    namespace_projects: Mapping[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> bool:
        return "platform-admin" in self.platform

    @property
    def reads_all(self) -> bool:
        return self.admin or "platform-auditor" in self.platform

    def member_of(self, project: str) -> bool:
        return self.reads_all or bool(self.projects.get(project)) or any(
            self.namespace_projects.get(ns) == project for ns in self.namespaces)

    def sees_namespace(self, name: str, project: str) -> bool:
        return (self.reads_all or bool(self.projects.get(project))
                or bool(self.namespaces.get(name)))

    def manages(self, project: str) -> bool:
        return self.admin or "project-admin" in self.projects.get(project, frozenset())

    def may_bind(self, spec: PlatformRoleBindingSpec) -> bool:
        if self.admin:
            return True
        if spec.role not in PROJECT_ROLES:
            return False
        project = spec.scope.project or self.namespace_projects.get(spec.scope.namespace or "")
        return project is not None and self.manages(project)

    def sees_binding(self, spec: PlatformRoleBindingSpec) -> bool:
        if self.reads_all:
            return True
        project = spec.scope.project or self.namespace_projects.get(spec.scope.namespace or "")
        return project is not None and self.member_of(project)


def access_for(identity: Identity, *, bindings: Iterable[PlatformRoleBindingSpec],
               namespace_projects: Mapping[str, str]) -> Access:
    """The access of `identity` under `bindings`; `namespace_projects` maps each
    ProjectNamespace's name to its project."""
    platform: set[str] = {"platform-admin"} if PLATFORM_ADMINS in identity.groups else set()
    projects: dict[str, set[str]] = {}
    namespaces: dict[str, set[str]] = {}
    for b in bindings:
        subject = b.subject
        if not ((subject.kind == "User" and subject.name == identity.user)
                or (subject.kind == "Group" and subject.name in identity.groups)):
            continue
        if b.scope.kind == "platform":
            platform.add(b.role)
        elif b.scope.kind == "project":
            projects.setdefault(b.scope.project or "", set()).add(b.role)
        else:
            namespaces.setdefault(b.scope.namespace or "", set()).add(b.role)
    return Access(user=identity.user, platform=frozenset(platform),
                  projects={k: frozenset(v) for k, v in projects.items()},
                  namespaces={k: frozenset(v) for k, v in namespaces.items()},
                  namespace_projects=dict(namespace_projects))
