"""One lightkube client per workload cluster, kept and reused while its credentials hold.

The controllers talk to every cluster every few seconds. A client is kept under a key
standing for its credentials (a Secret's resourceVersion, a token); a replaced client
is closed a little later, so a request another task has under way on it still ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

import httpx2
from lightkube import AsyncClient, ConfigError
from lightkube.config.client_adapter import AsyncClient as adapter_client
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig

from kubeglobe.kube.client import DEFAULT_TIMEOUT, KubeconfigError, async_client
from kubeglobe.kube.rest import RestTarget, rest_target

RETIRE_SECONDS = 30.0  # longer than any request on a client (10 s timeouts)


class ClusterClient:
    """A workload cluster's lightkube client (`kube`), and from the same kubeconfig its
    raw side: `plain` (lightkube's own httpx2 adapter) for `/version` and the proxy's
    bytes, and `target` for dialing upgrades."""

    def __init__(self, config: SingleConfig, *, timeout: httpx2.Timeout = DEFAULT_TIMEOUT):
        try:
            self.kube: AsyncClient = async_client(config, timeout=timeout)
        except (ConfigError, OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise KubeconfigError(f"cannot build a client for {config.cluster.server}: "
                                  f"{e}") from e
        self._config = config
        self._timeout = timeout
        self._plain: httpx2.AsyncClient | None = None
        self._target: RestTarget | None = None
        self.closed = False

    @property
    def plain(self) -> httpx2.AsyncClient:
        if self._plain is None:
            self._plain = adapter_client(self._config, ConnectionParams(
                timeout=self._timeout, trust_env=False))
        return self._plain

    @property
    def target(self) -> RestTarget:
        """KubeconfigError if the kubeconfig's client certificate is unusable."""
        if self._target is None:
            self._target = rest_target(self._config)
        return self._target

    async def version(self) -> dict[str, Any]:
        """The apiserver's `/version` (httpx2.HTTPStatusError if it answers an error)."""
        found = (await self.plain.get("version")).raise_for_status().json()
        return found if isinstance(found, dict) else {}

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.kube.aclose()
        if self._plain is not None:
            await self._plain.aclose()


class ClusterClients:
    """The kept clients, by cluster name."""

    def __init__(self, *, retire_seconds: float = RETIRE_SECONDS) -> None:
        self._held: dict[str, tuple[Hashable, ClusterClient]] = {}
        self._retiring: dict[asyncio.Task[None], ClusterClient] = {}
        self._retire_seconds = retire_seconds

    def client(self, cluster: str, *, credentials: Hashable,
               config: Callable[[], SingleConfig]) -> ClusterClient:
        """The cluster's client for these credentials; `config` is called only to build a
        new one. Synchronous on purpose: no other task runs between looking up and
        storing, so two callers never build two clients for one cluster."""
        held = self._held.get(cluster)
        if held is not None and held[0] == credentials:
            return held[1]
        fresh = ClusterClient(config())
        self._held[cluster] = (credentials, fresh)
        if held is not None:
            self._retire(held[1])
        return fresh

    def drop(self, cluster: str) -> None:
        """Close the cluster's client (it is gone, or no longer reachable this way)."""
        held = self._held.pop(cluster, None)
        if held is not None:
            self._retire(held[1])

    def _retire(self, client: ClusterClient) -> None:
        async def later() -> None:
            await asyncio.sleep(self._retire_seconds)
            await client.aclose()

        task = asyncio.get_running_loop().create_task(later())
        self._retiring[task] = client
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def aclose(self) -> None:
        retiring, self._retiring = self._retiring, {}
        held, self._held = self._held, {}
        for task in retiring:
            task.cancel()
        for client in [*retiring.values(), *(c for _, c in held.values())]:
            await client.aclose()
