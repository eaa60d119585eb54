"""Server-side apply of an ApplySet to a cluster, pruning what left it (`applyset.py`)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from lightkube import Client, codecs
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet, Deployment
from lightkube.resources.core_v1 import ConfigMap

from kubeglobe.api.meta import FIELD_MANAGER
from kubeglobe.deploy.applyset import (
    PART_OF,
    Manifest,
    Member,
    applyset_id,
    kinds_listed,
    labelled,
    members,
    parent,
    to_prune,
)
from kubeglobe.hub.missing import missing_ok_sync

log = logging.getLogger("kubeglobe.deploy")

# Kubernetes 1.20 serves PodDisruptionBudgets as policy/v1beta1 only (policy/v1 is 1.21),
# which lightkube's models no longer carry: known to it as a generic resource.
create_namespaced_resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")


def apply_set(client: Client, *, name: str, namespace: str,
              manifests: list[Manifest]) -> list[Member]:
    """Apply `manifests` as set `namespace/name` and delete its members they no longer
    have; returns those deleted. Safe to repeat, and to resume after a failure: the
    parent lists the kinds of both versions until the prune is done."""
    wanted = members(manifests, namespace)
    kinds = {(m.api_version, m.kind) for m in wanted}
    found = missing_ok_sync(lambda: client.get(ConfigMap, name, namespace=namespace))
    before = kinds_listed(found.metadata.annotations if found and found.metadata else None)
    set_id = applyset_id(name, namespace)
    client.apply(codecs.from_dict(parent(name, namespace, kinds | before)),
                 field_manager=FIELD_MANAGER, force=True)
    for manifest in labelled(manifests, set_id):
        client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
    present = []
    for version, kind in sorted(kinds | before):
        resource: Any = resource_registry.load(version, kind)  # namespaced: members() says
        for obj in client.list(resource, namespace=namespace, labels={PART_OF: set_id}):
            meta = getattr(obj, "metadata", None)  # every listed object has it
            if meta is not None and meta.name:
                present.append(Member(version, kind, meta.name))
    pruned = to_prune(present, wanted)
    for member in pruned:
        log.info("pruning %s %s/%s: no longer part of %s", member.kind, namespace,
                 member.name, name)
        resource = resource_registry.load(member.api_version, member.kind)
        missing_ok_sync(partial(client.delete, resource, member.name, namespace=namespace))
    client.apply(codecs.from_dict(parent(name, namespace, kinds)),
                 field_manager=FIELD_MANAGER, force=True)
    return pruned


def rollout(client: Client, kind: str, name: str, namespace: str) -> str:
    """"ok" once `kind` (deployment or daemonset) `name` has rolled out, else how far."""
    if kind == "daemonset":
        return _daemonset_rolled_out(client, name, namespace)
    return _rolled_out(client, name, namespace)


def _rolled_out(client: Client, name: str, namespace: str) -> str:
    """"ok" once every replica of the current version is available and no old one is
    left (old ones count as available while a rollout goes), else how far it is."""
    found = client.get(Deployment, name, namespace=namespace)
    want = found.spec.replicas if found.spec and found.spec.replicas is not None else 1
    generation = (found.metadata.generation if found.metadata else None) or 0
    status = found.status
    have = (status.availableReplicas or 0) if status else 0
    if (status is not None and (status.observedGeneration or 0) >= generation
            and status.updatedReplicas == want and status.replicas == want and have >= want):
        return "ok"
    return f"{have} of {want} replicas of the current version available"


def _daemonset_rolled_out(client: Client, name: str, namespace: str) -> str:
    """"ok" once every node it should run on has an available pod of the current version."""
    found = client.get(DaemonSet, name, namespace=namespace)
    generation = (found.metadata.generation if found.metadata else None) or 0
    status = found.status
    if status is None:
        return "no status yet"
    want = status.desiredNumberScheduled
    have = status.numberAvailable or 0
    if ((status.observedGeneration or 0) >= generation and want > 0
            and (status.updatedNumberScheduled or 0) == want and have >= want):
        return "ok"
    return f"{have} of {want} nodes with an available pod of the current version"
