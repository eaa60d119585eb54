"""Lease-based leader election, so that of N controller replicas exactly one acts.

kopf's peering only pauses same-priority peers; it is not leader election. The holder
renews a `coordination.k8s.io/v1` Lease every `renew_seconds`; another replica takes it
over once it has not been renewed for `lease_seconds`. Writes carry the Lease's
resourceVersion, so two candidates can never both win a round.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NewType

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from kubeglobe import failures
from kubeglobe.hub.missing import missing_ok
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.microtime import micro_now

Identity = NewType("Identity", str)
log = logging.getLogger("kubeglobe.leader")


@dataclass(frozen=True)
class ElectionSettings:
    name: str
    namespace: str
    lease_seconds: int = 10
    renew_seconds: float = 2.0

    @property
    def renew_deadline(self) -> float:
        """Stop acting this long after the last renewal: before others may take over."""
        return self.lease_seconds - 2 * self.renew_seconds


def decide(*, holder: str | None, renewed: dt.datetime | None, duration: int,
           me: Identity, now: dt.datetime) -> bool:
    """May `me` write itself as holder? Yes if it holds the lease, or it is free/expired."""
    if holder is None or holder == me or renewed is None:
        return True
    return (now - renewed).total_seconds() > duration


class LeaderElector:
    def __init__(self, *, client: AsyncClient, settings: ElectionSettings,
                 identity: Identity) -> None:
        self._client = client
        self._settings = settings
        self._me = identity

    async def _try_once(self) -> bool:
        s = self._settings
        now = micro_now()
        lease = await missing_ok(self._client.get(Lease, s.name, namespace=s.namespace))
        try:
            if lease is None:
                await self._client.create(Lease(
                    metadata=ObjectMeta(name=s.name, namespace=s.namespace),
                    spec=LeaseSpec(holderIdentity=self._me, leaseDurationSeconds=s.lease_seconds,
                                   acquireTime=now, renewTime=now, leaseTransitions=0)))
                return True
            spec = lease.spec or LeaseSpec()
            if not decide(holder=spec.holderIdentity, renewed=spec.renewTime,
                          duration=spec.leaseDurationSeconds or s.lease_seconds,
                          me=self._me, now=now):
                return False
            if spec.holderIdentity != self._me:
                spec.acquireTime = now
                spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
            spec.holderIdentity = self._me
            spec.renewTime = now
            spec.leaseDurationSeconds = s.lease_seconds
            lease.spec = spec
            await self._client.replace(lease)  # carries resourceVersion: optimistic lock
        except ApiError as e:
            if e.status.code == 409:  # another candidate wrote first
                return False
            raise
        return True

    async def _attempt(self) -> bool:
        try:
            return await self._try_once()
        except KUBE_ERRORS as e:  # the hub refusing or unreachable: not renewed this round
            failures.caught(log, component="leader-election", operation="renewing the lease",
                            error=e)
            return False

    async def run(self, *, on_leading: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign until elected, run `on_leading` while the lease is renewed; return
        (having cancelled it) when leadership is lost: the caller should exit then."""
        s = self._settings
        while not await self._attempt():
            await asyncio.sleep(s.renew_seconds)
        log.info("leader election: %s now leads %s/%s", self._me, s.namespace, s.name)
        work = asyncio.create_task(on_leading())
        last_renewal = asyncio.get_running_loop().time()
        try:
            while not work.done():
                await asyncio.sleep(s.renew_seconds)
                if await self._attempt():
                    last_renewal = asyncio.get_running_loop().time()
                elif asyncio.get_running_loop().time() - last_renewal > s.renew_deadline:
                    log.error("leader election: lost the lease %s/%s", s.namespace, s.name)
                    break
        finally:
            work.cancel()
            (outcome,) = await asyncio.gather(work, return_exceptions=True)
            # The work ending on its own (not cancelled here) ends the leadership too: say
            # why, since the caller then exits.
            if isinstance(outcome, Exception):
                log.error("leader election: the work under %s/%s failed; stepping down",
                          s.namespace, s.name, exc_info=outcome)
            elif outcome is None:
                log.warning("leader election: the work under %s/%s ended; stepping down",
                            s.namespace, s.name)
