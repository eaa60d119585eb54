"""Everything the platform wants on one cluster, and how to tell whether it is there.

Pure: from the accepted project namespaces and the role bindings, `desired_objects`
lists the Namespaces, ResourceQuotas, LimitRanges and RBAC objects for a cluster, in the
order they must be applied. `drifted` says whether an object read from the cluster
still holds every field the platform set (others may add fields; nobody may change
ours). `api_path` is where an object lives in the Kubernetes API.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.hub.tenancy.namespaces import namespace_objects
from kubeglobe.hub.tenancy.rbac import NamedBinding, NamedNamespace, cluster_rbac

Manifest = dict[str, Any]
_PLURALS = {"Namespace": "namespaces", "ResourceQuota": "resourcequotas",
            "LimitRange": "limitranges", "RoleBinding": "rolebindings",
            "ClusterRoleBinding": "clusterrolebindings", "ClusterRole": "clusterroles"}
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


def api_path(obj: Manifest) -> str:
    version = obj["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = obj["metadata"].get("namespace")
    where = f"{base}/namespaces/{namespace}" if namespace else base
    return f"{where}/{_PLURALS[obj['kind']]}/{obj['metadata']['name']}"


def key(obj: Manifest) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


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
