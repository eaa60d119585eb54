"""The agent's client certificate for its apiserver, kept current for its HAProxy.

Stored in the agent's Secret, obtained from the cluster (`apiserver_certificate.py`)
when missing or due. Until there is one (or when it could not be renewed in time) the
agent's HAProxy does not run, and the tunnels serve the cluster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from kubeglobe.agent.apiserver_certificate import (
    CertificateUnavailable,
    ClientCertificate,
    due,
    expired,
)
from kubeglobe.agent.gateway_link import Apiserver
from kubeglobe.failures import caught
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.upgrade import Endpoint

log = logging.getLogger("kubeglobe.agent.certificate")
RETRY_SECONDS = 300.0  # a cluster that did not sign: ask again this much later
# a refusal, or the cluster away for a moment (lightkube raises httpx2's errors): retry
_RETRIED: tuple[type[Exception], ...] = (CertificateUnavailable, *KUBE_ERRORS)


class CertificateStore(Protocol):
    async def load_certificate(self) -> ClientCertificate | None: ...

    async def save_certificate(self, found: ClientCertificate) -> None: ...


@dataclass(eq=False, kw_only=True)
class CertificateKeeper:
    """The apiserver as the agent's HAProxy reaches it, once there is a certificate."""

    issue: Callable[[], Awaitable[ClientCertificate]]  # a new one from the cluster (`obtain`)
    store: CertificateStore
    apiserver: Endpoint
    ca_pem: bytes | None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    certificate: ClientCertificate | None = field(default=None, init=False)  # the one in use

    def for_gateway_link(self) -> Apiserver | None:
        if self.certificate is None or self.ca_pem is None:
            return None
        return Apiserver(host=self.apiserver.host, port=self.apiserver.port,
                         ca_pem=self.ca_pem, certificate=self.certificate)

    def usable(self) -> str | None:
        """Why the agent's HAProxy cannot serve this apiserver, or None if it can."""
        if self.apiserver.base_path:
            return "the apiserver URL has a path, which the agent's HAProxy does not add"
        if self.ca_pem is None:
            return "the kubeconfig names no CA for the apiserver"
        return None

    async def keep(self) -> None:
        """Hold a current certificate for as long as the agent runs."""
        reason = self.usable()
        if reason is not None:
            log.info("the tunnels alone serve the hub: %s", reason)
            return
        while True:
            wait = RETRY_SECONDS
            try:
                self.certificate = await self._current()
                wait = max(1.0, (self.certificate.renew_at() - self.clock()).total_seconds())
            except _RETRIED as e:
                caught(log, component="agent", operation="apiserver client certificate",
                       error=e)
            if self.certificate is not None and expired(self.certificate, self.clock()):
                log.warning("the client certificate expired before it was renewed; the "
                            "tunnels serve the hub until a new one is signed")
                self.certificate = None
            await self.sleep(wait)

    async def _current(self) -> ClientCertificate:
        found = await self.store.load_certificate()
        if due(found, self.clock()):
            found = await self.issue()
            await self.store.save_certificate(found)
            log.info("obtained a client certificate for the apiserver, valid until %s",
                     found.certificate.not_valid_after_utc.isoformat())
        assert found is not None
        return found
