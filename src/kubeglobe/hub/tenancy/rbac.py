"""Platform roles as native RBAC on one cluster: a pure function of the bindings.

The hub's proxy impersonates the platform user, so the workload cluster's own RBAC
decides: platform-admin -> cluster-admin; platform-auditor -> read everything;
project-admin / developer / viewer -> admin / edit / view in the project's namespaces
there (or in one namespace). Names derive from the binding, so applying again changes
nothing and an object no longer wanted can be found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from kubeglobe.api.tenancy import PlatformRoleBindingSpec, ProjectNamespaceSpec
from kubeglobe.hub.tenancy.namespaces import MANAGED_BY

RBAC = "rbac.authorization.k8s.io"
BINDING_LABEL = "kubeglobe.io/platform-role-binding"
AUDITOR_ROLE = "kubeglobe:platform-auditor"
NAMESPACED_ROLES = {"project-admin": "admin", "developer": "edit", "viewer": "view"}


@dataclass(frozen=True)
class NamedBinding:
    name: str
    spec: PlatformRoleBindingSpec


@dataclass(frozen=True)
class NamedNamespace:
    name: str  # the ProjectNamespace resource's name
    spec: ProjectNamespaceSpec


def auditor_role() -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
        "metadata": {"name": AUDITOR_ROLE, "labels": dict(MANAGED_BY)},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
                  {"nonResourceURLs": ["*"], "verbs": ["get"]}],
    }


def _binding(b: NamedBinding, kind: str, role: str, namespace: str | None = None,
             ) -> dict[str, Any]:
    # Binding names are DNS-1123 already; the hash keeps long ones within 253 chars.
    digest = hashlib.sha256(b.name.encode()).hexdigest()[:8]
    where = {"namespace": namespace} if namespace is not None else {}
    return {
        "apiVersion": f"{RBAC}/v1", "kind": kind,
        "metadata": {"name": f"kubeglobe:{b.name[:200]}:{digest}", **where,
                     "labels": {**MANAGED_BY, BINDING_LABEL: b.name[:63].strip("-.")}},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": b.spec.subject.kind,
                      "name": b.spec.subject.name}],
    }


def cluster_rbac(*, cluster: str, bindings: list[NamedBinding],
                 namespaces: list[NamedNamespace]) -> list[dict[str, Any]]:
    """Every RBAC object the platform wants on `cluster` (sorted, so output is stable)."""
    here = [n for n in namespaces if n.spec.cluster == cluster]
    objects: list[dict[str, Any]] = []
    auditors = False
    for b in sorted(bindings, key=lambda b: b.name):
        spec = b.spec
        if spec.scope.kind == "platform":
            role = "cluster-admin" if spec.role == "platform-admin" else AUDITOR_ROLE
            auditors = auditors or role == AUDITOR_ROLE
            objects.append(_binding(b, "ClusterRoleBinding", role))
            continue
        if spec.scope.kind == "project":
            targets = [n for n in here if n.spec.project == spec.scope.project]
        else:
            targets = [n for n in here if n.name == spec.scope.namespace]
        for ns in sorted(targets, key=lambda n: n.spec.namespace):
            objects.append(_binding(b, "RoleBinding", NAMESPACED_ROLES[spec.role],
                                    ns.spec.namespace))
    if auditors:
        objects.insert(0, auditor_role())
    return objects
