"""Server-side apply of an ApplySet to a cluster, pruning what left it (`applyset.py`)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from lightkube import Client, codecs
from lightkube.core.resource_registry import resource_registry
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
