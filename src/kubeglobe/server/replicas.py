"""Which API server replicas are alive: each publishes a Lease naming its own URL.

Agents ask for the list (`/api/v1/agent/replicas`) and keep a tunnel to every replica,
so a request for a registered cluster is served by the replica it lands on, without a
hop to another one, and losing a replica loses none of the cluster's reachability.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.kube.informer import Background
from kubeglobe.kube.microtime import micro_now
from kubeglobe.server.tunnels import LEASE_SECONDS, RENEW_SECONDS, fresh, replica_id

log = logging.getLogger("kubeglobe.replicas")
REPLICA_LABEL = "kubeglobe.io/platform-server"


class ReplicaRegistry:
    def __init__(self, hub: AsyncClient, advertise_url: str) -> None:
        self._hub = hub
        self._me = advertise_url
        self._task = Background(self._publish)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        with contextlib.suppress(Exception):
            await self._hub.delete(Lease, f"kubeglobe-server-{replica_id(self._me)}",
                                   namespace=SYSTEM_NAMESPACE)

    async def _publish(self) -> None:
        name = f"kubeglobe-server-{replica_id(self._me)}"
        started = micro_now()
        while True:
            lease = Lease(metadata=ObjectMeta(name=name, namespace=SYSTEM_NAMESPACE,
                                              labels={REPLICA_LABEL: "true"}),
                          spec=LeaseSpec(holderIdentity=self._me, acquireTime=started,
                                         leaseDurationSeconds=LEASE_SECONDS,
                                         renewTime=micro_now()))
            try:
                await self._hub.apply(lease, field_manager="kubeglobe-server", force=True)
            except ApiError as e:
                log.warning("publishing this replica: %s", e.status.message)
            except Exception as e:  # the hub unreachable for a moment: retry, never stop
                log.warning("publishing this replica: %s", e)
            await asyncio.sleep(RENEW_SECONDS)

    async def live(self) -> list[str]:
        """URLs of the replicas whose Lease is fresh (this one included)."""
        now = dt.datetime.now(dt.UTC)
        found = {lease.spec.holderIdentity
                 async for lease in self._hub.list(Lease, namespace=SYSTEM_NAMESPACE,
                                                   labels={REPLICA_LABEL: "true"})
                 if lease.spec is not None and fresh(lease.spec, now)}
        return sorted(u for u in found if u)


