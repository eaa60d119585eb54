"""Server-side apply of rendered objects to one cluster of the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightkube import codecs
from lightkube.generic_resource import create_namespaced_resource

from kubeglobe.api.meta import FIELD_MANAGER
from kubeglobe.kube.client import load_kubeconfig, sync_client

# Kubernetes 1.20 serves PodDisruptionBudgets as policy/v1beta1 only (policy/v1 is 1.21),
# which lightkube's models no longer carry: known to it as a generic resource.
create_namespaced_resource("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets")


def apply_all(kubeconfig: Path, manifests: list[dict[str, Any]]) -> None:
    """Apply each object in order (a second call changes nothing)."""
    with sync_client(load_kubeconfig(path=kubeconfig)) as client:
        for manifest in manifests:
            client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
