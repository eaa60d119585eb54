"""Which API server replicas are alive: each publishes a Lease naming its own URL.

Agents ask for the list (`/api/v1/agent/replicas`) and keep a tunnel to every replica,
so a request for a registered cluster is served by the replica it lands on, without a
hop to another one, and losing a replica loses none of the cluster's reachability.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging

from lightkube import AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Endpoints

from kubeglobe.api.meta import AGENTS_PORT, GATEWAY_SERVICE, SYSTEM_NAMESPACE
from kubeglobe.failures import caught
from kubeglobe.hub.missing import missing_ok
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.endpoints import ready_addresses
from kubeglobe.kube.informer import Background
from kubeglobe.kube.microtime import micro_now

log = logging.getLogger("kubeglobe.replicas")
REPLICA_LABEL = "kubeglobe.io/platform-server"
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0


def fresh(spec: LeaseSpec | None, now: dt.datetime) -> bool:
    if spec is None or spec.renewTime is None or spec.holderIdentity is None:
        return False
    return (now - spec.renewTime).total_seconds() < (spec.leaseDurationSeconds
                                                     or LEASE_SECONDS)


class ReplicaRegistry:
    def __init__(self, hub: AsyncClient, advertise_url: str) -> None:
        self._hub = hub
        self._me = advertise_url
        digest = hashlib.sha256(advertise_url.encode()).hexdigest()[:10]
        self._lease = f"kubeglobe-server-{digest}"
        self._task = Background(self._publish)

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        try:  # agents stop dialling this replica at once instead of after LEASE_SECONDS
            await self._hub.delete(Lease, self._lease, namespace=SYSTEM_NAMESPACE)
        except KUBE_ERRORS as e:
            caught(log, component="server", operation="withdraw replica lease", error=e,
                   level=logging.INFO)

    async def _publish(self) -> None:
        started = micro_now()
        while True:
            lease = Lease(metadata=ObjectMeta(name=self._lease, namespace=SYSTEM_NAMESPACE,
                                              labels={REPLICA_LABEL: "true"}),
                          spec=LeaseSpec(holderIdentity=self._me, acquireTime=started,
                                         leaseDurationSeconds=LEASE_SECONDS,
                                         renewTime=micro_now()))
            try:
                await self._hub.apply(lease, field_manager="kubeglobe-server", force=True)
            except KUBE_ERRORS as e:  # the hub away for a moment: retry
                caught(log, component="server", operation="publish replica lease", error=e)
            await asyncio.sleep(RENEW_SECONDS)

    async def live(self) -> list[str]:
        """URLs of the replicas whose Lease is fresh (this one included)."""
        now = dt.datetime.now(dt.UTC)
        found = {lease.spec.holderIdentity
                 async for lease in self._hub.list(Lease, namespace=SYSTEM_NAMESPACE,
                                                   labels={REPLICA_LABEL: "true"})
                 if lease.spec is not None and fresh(lease.spec, now)}
        return sorted(u for u in found if u)


async def gateway_replicas(hub: AsyncClient) -> list[str]:
    """HOST:PORT of each ready gateway replica's agent port (its Service's Endpoints);
    none where the gateway is not a set of pods (agents then use the one address)."""
    found = await missing_ok(hub.get(Endpoints, GATEWAY_SERVICE, namespace=SYSTEM_NAMESPACE))
    if found is None:
        return []
    return [f"{r.ip}:{r.port}" for r in ready_addresses(found.subsets, port=AGENTS_PORT)]
