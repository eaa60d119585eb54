"""Admission decisions for tenancy resources (pure): kubectl, the CLI and the REST API
meet the same rules.

A spec must be valid for its model (the checks JSON schema cannot express); a project
namespace must name an existing project that spans its cluster, clash with no other and
fit what the project has left there; a project quota cannot drop below what its
namespaces hold. Whether a deletion must wait for workloads needs the workload
clusters: the webhook (server/admission.py) checks those `namespaces_to_check` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from kubeglobe.api.tenancy import (
    GroupSpec,
    PlatformRoleBindingSpec,
    ProjectNamespaceSpec,
    ProjectSpec,
    UserSpec,
)
from kubeglobe.hub.tenancy.quota import (
    QuotaExceeded,
    Sibling,
    check_namespace_fits,
    check_project_quota,
)
from kubeglobe.hub.tenancy.workloads import forced

SPEC_MODELS: dict[str, type[BaseModel]] = {
    "Project": ProjectSpec,
    "ProjectNamespace": ProjectNamespaceSpec,
    "User": UserSpec,
    "Group": GroupSpec,
    "PlatformRoleBinding": PlatformRoleBindingSpec,
}


class Denied(ValueError):
    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


@dataclass(frozen=True)
class NamespaceEntry:
    """A ProjectNamespace as the webhook sees it in the global cluster."""

    name: str
    spec: ProjectNamespaceSpec
    rejected: bool
    deleting: bool


def spec_of(kind: str, obj: dict[str, Any]) -> Any:
    model = SPEC_MODELS[kind]
    try:
        return model.model_validate(obj.get("spec") or {})
    except ValidationError as e:
        raise Denied(f"{kind} {obj.get('metadata', {}).get('name', '')} is invalid: " + "; ".join(
            (".".join(str(p) for p in err["loc"]) + ": " if err["loc"] else "") + err["msg"]
            for err in e.errors()), invalid=True) from e


def spec_changed(operation: str, obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """A write that needs checking: a create, or an update of the spec of an object not
    being deleted (finalizer and annotation updates pass)."""
    if operation == "CREATE":
        return True
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (old or {}).get("spec") != obj.get("spec")


def check_namespace(name: str, spec: ProjectNamespaceSpec, *, project: ProjectSpec | None,
                    others: list[NamespaceEntry]) -> None:
    if project is None:
        raise Denied(f"project {spec.project} does not exist; create it first")
    for o in others:
        if o.name != name and not o.deleting and (o.spec.cluster, o.spec.namespace) == (
                spec.cluster, spec.namespace):
            raise Denied(f"namespace {spec.namespace} on {spec.cluster} already belongs to "
                         f"project namespace {o.name}")
    siblings = [Sibling(o.name, o.spec.quota) for o in others
                if o.name != name and not o.deleting and not o.rejected
                and o.spec.project == spec.project and o.spec.cluster == spec.cluster]
    try:
        check_namespace_fits(name=name, spec=spec, project=project, siblings=siblings)
    except QuotaExceeded as e:
        raise Denied(str(e)) from e


def check_project(name: str, spec: ProjectSpec, *, others: list[NamespaceEntry]) -> None:
    mine = [(o.name, o.spec) for o in others
            if o.spec.project == name and not o.deleting and not o.rejected]
    try:
        check_project_quota(project=name, spec=spec, namespaces=mine)
    except QuotaExceeded as e:
        raise Denied(str(e)) from e


def namespaces_to_check(kind: str, operation: str, obj: dict[str, Any],
                        old: dict[str, Any] | None,
                        entries: list[NamespaceEntry]) -> list[NamespaceEntry]:
    """The project namespaces whose workloads would be removed by this write, unless it
    is forced (then none)."""
    meta = (obj or old or {}).get("metadata") or {}
    if forced(meta.get("annotations")):
        return []
    if kind == "ProjectNamespace" and operation == "DELETE":
        return [e for e in entries if e.name == meta.get("name") and not e.rejected]
    if kind == "Project" and operation == "DELETE":
        return [e for e in entries if e.spec.project == meta.get("name") and not e.rejected]
    if kind == "Project" and operation == "UPDATE" and old is not None:
        before = {c.get("name") for c in (old.get("spec") or {}).get("clusters") or []}
        after = {c.get("name") for c in (obj.get("spec") or {}).get("clusters") or []}
        gone = before - after
        return [e for e in entries if e.spec.project == meta.get("name")
                and e.spec.cluster in gone and not e.rejected]
    return []
