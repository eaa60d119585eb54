"""The platform's objects as an ApplySet (Kubernetes KEP-3659), so that an upgrade prunes
what a version no longer has (pure).

A parent ConfigMap names the set (label `applyset.kubernetes.io/id`) and the kinds it
holds (`applyset.kubernetes.io/contains-group-kinds`, and with their versions in
`kubeglobe.io/applyset-kinds`, which is what is listed when pruning); every member
carries `applyset.kubernetes.io/part-of` with the set's id. An object of the set that
the new manifests do not have is deleted; an object without the label is never touched.
The set holds objects of its parent's namespace only.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PART_OF = "applyset.kubernetes.io/part-of"
ID = "applyset.kubernetes.io/id"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
TOOLING = "applyset.kubernetes.io/tooling"
KINDS = "kubeglobe.io/applyset-kinds"  # "apiVersion Kind" each, comma-separated

Manifest = dict[str, Any]


@dataclass(frozen=True, order=True)
class Member:
    api_version: str
    kind: str
    name: str


def applyset_id(name: str, namespace: str) -> str:
    """The id KEP-3659 gives a set whose parent is ConfigMap `namespace/name`."""
    digest = hashlib.sha256(f"{name}.{namespace}.ConfigMap.".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def members(manifests: Iterable[Manifest], namespace: str) -> set[Member]:
    """The set's members; ValueError naming an object outside `namespace`."""
    found = set()
    for m in manifests:
        meta = m.get("metadata") or {}
        if meta.get("namespace") != namespace:
            raise ValueError(f"{m.get('kind')} {meta.get('name')!r} is not in namespace "
                             f"{namespace!r}: the platform's apply set holds objects of "
                             "its own namespace only; apply it separately")
        found.add(Member(m["apiVersion"], m["kind"], meta["name"]))
    return found


def labelled(manifests: Iterable[Manifest], set_id: str) -> list[Manifest]:
    """Copies of `manifests` marked as members of the set."""
    out = []
    for m in manifests:
        m = copy.deepcopy(m)
        m.setdefault("metadata", {}).setdefault("labels", {})[PART_OF] = set_id
        out.append(m)
    return out


def _group_kind(api_version: str, kind: str) -> str:
    group = api_version.rpartition("/")[0]
    return f"{kind}.{group}" if group else kind


def parent(name: str, namespace: str, kinds: set[tuple[str, str]]) -> Manifest:
    """The set's parent ConfigMap, listing `kinds` ((apiVersion, Kind) each)."""
    ordered = sorted(kinds)
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {ID: applyset_id(name, namespace)},
            "annotations": {
                TOOLING: "kubeglobe/v1",
                GROUP_KINDS: ",".join(sorted({_group_kind(v, k) for v, k in ordered})),
                KINDS: ",".join(f"{v} {k}" for v, k in ordered)}},
    }


def kinds_listed(annotations: dict[str, str] | None) -> set[tuple[str, str]]:
    """The kinds a parent's annotations say the set holds."""
    found = set()
    for item in ((annotations or {}).get(KINDS) or "").split(","):
        version, _, kind = item.strip().partition(" ")
        if version and kind:
            found.add((version, kind))
    return found


def to_prune(found: Iterable[Member], wanted: set[Member]) -> list[Member]:
    """Members found in the cluster that the manifests no longer have, in a stable order."""
    return sorted(m for m in set(found) if m not in wanted)
