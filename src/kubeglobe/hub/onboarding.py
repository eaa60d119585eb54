"""Bringing a cluster under management: import (the hub dials it) and removal.

`import_cluster` checks everything (name, kubeconfig, reachability, version) before it
writes the kubeconfig Secret and the Cluster, so a refused import leaves nothing behind.
The Secret is owned by the Cluster, so the garbage collector deletes it with the Cluster.
"""

from __future__ import annotations

import re
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.cluster import CLUSTER_KIND
from kubeglobe.api.meta import API_VERSION, CLUSTER_LABEL, SYSTEM_NAMESPACE
from kubeglobe.hub.cluster_access import parse_kubeconfig
from kubeglobe.hub.cluster_status import version_refusal
from kubeglobe.hub.inventory import ProbeFailed, probe
from kubeglobe.hub.missing import missing_ok
from kubeglobe.kube.client import KubeconfigError, load_kubeconfig
from kubeglobe.kube.clusters import ClusterClient
from kubeglobe.kube.resources import ClusterCR

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IMPORT_PROBE_TIMEOUT = 5.0


class OnboardingError(ValueError):
    """A refused onboarding request; `status` is the HTTP status that fits it."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise OnboardingError(
            f"cluster name {name!r} is not valid: use 1-63 lowercase letters, digits and "
            "'-', starting and ending with a letter or digit", status=422)


def kubeconfig_secret_name(cluster: str) -> str:
    return f"cluster-{cluster}-kubeconfig"


async def import_cluster(*, hub: AsyncClient, name: str, kubeconfig: bytes,
                         display_name: str | None = None) -> dict[str, Any]:
    """Validate, then create the Secret and the Cluster; returns the Cluster object."""
    check_name(name)
    if await missing_ok(hub.get(ClusterCR, name)) is not None:
        raise OnboardingError(f"cluster {name} already exists; choose another name or "
                              f"unregister it first", status=409)
    try:
        config = load_kubeconfig(data=parse_kubeconfig(kubeconfig))
        cluster = ClusterClient(config)
    except KubeconfigError as e:
        raise OnboardingError(f"bad kubeconfig: {e}", status=422) from e
    try:
        inventory = await probe(cluster, timeout=IMPORT_PROBE_TIMEOUT)
    except ProbeFailed as e:
        raise OnboardingError(
            f"cannot reach cluster {name} at {config.cluster.server} with this kubeconfig: "
            f"{e}; check the address, CA and credentials", status=422) from e
    finally:
        await cluster.aclose()
    refusal = version_refusal(inventory.kubernetes_version)
    if refusal:
        raise OnboardingError(refusal, status=422)

    secret_name = kubeconfig_secret_name(name)
    secret = Secret(metadata=ObjectMeta(name=secret_name, namespace=SYSTEM_NAMESPACE,
                                        labels={CLUSTER_LABEL: name}),
                    stringData={"kubeconfig": kubeconfig.decode()})
    try:
        await hub.create(secret)
    except ApiError as e:
        if e.status.code != 409:
            raise
        await hub.replace(secret)  # a leftover of an earlier, interrupted import
    spec: dict[str, Any] = {"mode": "import",
                            "kubeconfigSecretRef": {"name": secret_name,
                                                    "namespace": SYSTEM_NAMESPACE}}
    if display_name:
        spec["displayName"] = display_name
    try:
        created = await hub.create(ClusterCR(
            metadata=ObjectMeta(name=name), spec=spec))
    except ApiError:
        await hub.delete(Secret, secret_name, namespace=SYSTEM_NAMESPACE)
        raise
    uid = created.metadata.uid if created.metadata else None
    await hub.patch(Secret, secret_name, {"metadata": {"ownerReferences": [
        OwnerReference(apiVersion=API_VERSION, kind=CLUSTER_KIND, name=name,
                       uid=uid or "").to_dict()]}}, namespace=SYSTEM_NAMESPACE)
    return dict(created)


async def unregister_cluster(*, hub: AsyncClient, name: str) -> None:
    try:
        await hub.delete(ClusterCR, name)
    except ApiError as e:
        if e.status.code == 404:
            raise OnboardingError(f"cluster {name} not found", status=404) from e
        raise
