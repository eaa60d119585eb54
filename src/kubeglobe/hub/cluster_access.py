"""How the hub reaches a workload cluster: its kept client (kube/clusters.py).

Import mode: the kubeconfig in the Secret the Cluster names. Register mode: the platform
API's proxy (which holds the agents' tunnels) with the controller's platform token. A
client is replaced when the Secret's resourceVersion (or the route) changes, so a
rotated kubeconfig takes effect on the next call and an unchanged one costs no parsing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lightkube import AsyncClient
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import Cluster, Context, User
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.cluster import ClusterSpec, SecretRef
from kubeglobe.hub.missing import missing_ok
from kubeglobe.kube.client import KubeconfigError, load_kubeconfig
from kubeglobe.kube.clusters import ClusterClient, ClusterClients
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.kube.ttl import TtlCache


class ClusterUnreachable(RuntimeError):
    """The hub has no way to reach this cluster now; the message says why."""


@dataclass(frozen=True)
class PlatformRoute:
    """How hub processes outside the API server reach registered clusters: through the
    platform API's proxy (which holds the tunnels), with a platform token."""

    url: str
    ca_file: str | None
    token: str

    def server(self, cluster: str) -> str:
        return f"{self.url.rstrip('/')}/clusters/{cluster}/k8s"

    def kubeconfig(self, cluster: str) -> SingleConfig:
        """The route to `cluster` as a kubeconfig, for lightkube."""
        ca = str(Path(self.ca_file).resolve()) if self.ca_file else None
        return SingleConfig(context_name="platform",
                            context=Context(cluster="platform", user="controller"),
                            cluster=Cluster(server=self.server(cluster), certificate_auth=ca),
                            user=User(token=self.token))


class ClusterAccess:
    def __init__(self, *, hub: AsyncClient, platform: PlatformRoute | None = None) -> None:
        self._hub = hub
        self._platform = platform
        self._recent: TtlCache[tuple[str, str], ClusterClient] = TtlCache(1.0)
        self._clients = ClusterClients()

    @property
    def hub(self) -> AsyncClient:
        return self._hub

    async def recent_client(self, *, name: str, spec: ClusterSpec) -> ClusterClient:
        """`client`, its credentials re-read at most once a second (the proxy's hot path:
        a busy proxy costs the hub no extra reads)."""
        return await self._recent.get((name, spec.model_dump_json()),
                                      lambda: self.client(name=name, spec=spec))

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def client(self, *, name: str, spec: ClusterSpec) -> ClusterClient:
        """The cluster's kept lightkube client (ClusterUnreachable or KubeconfigError if
        there is no way to build one now)."""
        if spec.mode == "register":
            route = self._platform
            if route is None:
                raise ClusterUnreachable(f"cluster {name}: registered clusters are reached "
                                         "through the platform API; none is configured")
            return self._clients.client(name, credentials=("register", route),
                                        config=lambda: route.kubeconfig(name))
        ref = spec.kubeconfigSecretRef
        assert ref is not None  # the model requires it in import mode
        try:
            secret = await self._hub.get(Secret, ref.name, namespace=ref.namespace)
        except ApiError as e:
            raise ClusterUnreachable(f"cannot read Secret {ref.namespace}/{ref.name} with "
                                     f"cluster {name}'s kubeconfig: {e.status.message}") from e
        version = (secret.metadata.resourceVersion if secret.metadata else None) or ""
        return self._clients.client(
            name, credentials=("import", ref.namespace, ref.name, ref.key, version),
            config=lambda: kubeconfig_in(secret, ref))

    async def client_of(self, name: str) -> ClusterClient | None:
        """`client` of Cluster `name` as its resource says now; None if it is gone."""
        cluster = await missing_ok(self._hub.get(ClusterCR, name))
        if cluster is None:
            return None
        return await self.client(name=name, spec=ClusterSpec.model_validate(
            cluster.get("spec") or {}))

    def forget(self, name: str) -> None:
        """Close the cluster's kept client: the cluster is going."""
        self._clients.drop(name)


def kubeconfig_in(secret: Secret, ref: SecretRef) -> SingleConfig:
    """The kubeconfig a Cluster's Secret holds under `ref.key` (ClusterUnreachable if the
    key is missing or not base64, KubeconfigError if it holds no usable kubeconfig)."""
    raw = (secret.data or {}).get(ref.key)
    if raw is None:
        raise ClusterUnreachable(f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r}; "
                                 "put the cluster's kubeconfig under that key")
    try:
        decoded = base64.b64decode(raw)
    except ValueError as e:
        raise ClusterUnreachable(
            f"Secret {ref.namespace}/{ref.name} key {ref.key!r} is not base64: {e}") from e
    return load_kubeconfig(data=parse_kubeconfig(decoded))


def parse_kubeconfig(raw: bytes) -> dict[str, Any]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise KubeconfigError(f"the kubeconfig is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("users"):
        raise KubeconfigError("the kubeconfig has no clusters or users; export a complete "
                              "kubeconfig (kubectl config view --raw --minify)")
    return data
