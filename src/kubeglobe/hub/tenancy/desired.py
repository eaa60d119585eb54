"""Everything the platform wants on one cluster, and how to tell whether it is there (pure).

`drifted` says whether an object read from the cluster still holds every field the
platform set (others may add fields; nobody may change ours).
"""

from __future__ import annotations

from typing import Any

from lightkube.core.resource import GlobalResource, NamespacedResource
from lightkube.resources.core_v1 import LimitRange, Namespace, ResourceQuota
from lightkube.resources.rbac_authorization_v1 import (
    ClusterRole,
    ClusterRoleBinding,
    RoleBinding,
)

from kubeglobe.hub.tenancy.namespaces import namespace_objects
from kubeglobe.hub.tenancy.rbac import NamedBinding, NamedNamespace, cluster_rbac

Manifest = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace ("" if cluster-wide), name
RESOURCES: dict[str, type[NamespacedResource] | type[GlobalResource]] = {
    "Namespace": Namespace, "ClusterRole": ClusterRole, "ResourceQuota": ResourceQuota,
    "LimitRange": LimitRange, "ClusterRoleBinding": ClusterRoleBinding,
    "RoleBinding": RoleBinding,
}
# A namespace before what lives in it, a role before the bindings to it.
_ORDER = {"Namespace": 0, "ClusterRole": 1, "ResourceQuota": 2, "LimitRange": 2,
          "ClusterRoleBinding": 3, "RoleBinding": 3}


def desired_objects(*, cluster: str, namespaces: list[NamedNamespace],
                    bindings: list[NamedBinding]) -> list[Manifest]:
    objects: list[Manifest] = []
    for ns in sorted(namespaces, key=lambda n: n.spec.namespace):
        if ns.spec.cluster == cluster:
            objects += namespace_objects(ns.spec)
    objects += cluster_rbac(cluster=cluster, bindings=bindings, namespaces=namespaces)
    return sorted(objects, key=lambda o: _ORDER[o["kind"]])


def apply_phase(obj: Manifest) -> int:
    """Objects of a lower phase are applied first (a namespace before its quota)."""
    return _ORDER[obj["kind"]]


def key(obj: Manifest) -> Key:
    return (obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"])


def _holds(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_holds(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(
            _holds(w, h) for w, h in zip(want, have, strict=True))
    return bool(want == have)


def drifted(desired: Manifest, actual: Manifest | None) -> bool:
    """True if the object is missing or lost or changed any field the platform set."""
    if actual is None:
        return True
    wanted = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    return not _holds(wanted, actual)
