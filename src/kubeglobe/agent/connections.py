"""Raw connections from the hub to the agent's apiserver: bytes only, no HTTP parsed.

The hub's gateway (HAProxy) authenticates the caller, sets the impersonation headers and
strips the platform's path prefix itself, then sends the request over a UNIX socket of
the replica holding this cluster's tunnel, which carries each connection as one tunnel
stream marked `connect`. Here such a stream is joined to a TLS connection to the
apiserver, authenticated with the agent's client certificate: the agent copies bytes
and does nothing per request, and a keep-alive connection serves request after request.

`DirectAccess` keeps that certificate (stored in the agent's Secret, obtained from the
cluster's CSR API when missing or due, renewed in the background). Until it has one the
agent does not offer `connect`, and the hub keeps using the per-request path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from kubeglobe.agent.apiserver_certificate import (
    CertificateUnavailable,
    ClientCertificate,
    due,
    expired,
)
from kubeglobe.agent.gateway_link import Apiserver
from kubeglobe.kube.upgrade import DialError, Endpoint, connect
from kubeglobe.tunnel.frames import CONNECT
from kubeglobe.tunnel.mux import Stream
from kubeglobe.tunnel.pipe import SocketEnd, StreamEnd, splice

log = logging.getLogger("kubeglobe.agent.connections")
RETRY_SECONDS = 300.0  # a cluster that did not sign: ask again this much later


class CertificateStore(Protocol):
    async def load_certificate(self) -> ClientCertificate | None: ...

    async def save_certificate(self, found: ClientCertificate) -> None: ...


class DirectAccess:
    """The apiserver endpoint for raw connections, once the agent holds a certificate."""

    def __init__(self, *, issue: Callable[[], Awaitable[ClientCertificate]],
                 store: CertificateStore, apiserver: Endpoint, ca_pem: bytes | None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._issue = issue  # a new certificate from the cluster (`obtain`)
        self._store = store
        self._apiserver = apiserver
        self._ca_pem = ca_pem
        self._clock = clock
        self._sleep = sleep
        self.endpoint: Endpoint | None = None
        self.certificate: ClientCertificate | None = None  # the one `endpoint` presents
        self.ready = asyncio.Event()  # set once `endpoint` is known (or known to be None)
        self.changed = asyncio.Event()  # set when the offer changes (tunnels re-announce)

    def for_gateway_link(self) -> Apiserver | None:
        """The apiserver as the agent's HAProxy reaches it, once there is a certificate."""
        if self.certificate is None or self._ca_pem is None:
            return None
        return Apiserver(host=self._apiserver.host, port=self._apiserver.port,
                         ca_pem=self._ca_pem, certificate=self.certificate)

    def features(self) -> list[str]:
        return [CONNECT] if self.endpoint is not None else []

    def usable(self) -> str | None:
        """Why raw connections cannot work for this apiserver, or None if they can."""
        if self._apiserver.base_path:
            return "the apiserver URL has a path, which raw connections cannot add"
        if self._ca_pem is None:
            return "the kubeconfig names no CA for the apiserver"
        return None

    async def keep(self) -> None:
        """Hold a current certificate for as long as the agent runs."""
        reason = self.usable()
        if reason is not None:
            log.info("serving the hub per request only: %s", reason)
            self.ready.set()
            return
        in_use: ClientCertificate | None = None
        while True:
            wait = RETRY_SECONDS
            try:
                in_use = await self._current()
                self._use(in_use)
                wait = max(1.0, (in_use.renew_at() - self._clock()).total_seconds())
            except CertificateUnavailable as e:
                log.warning("no new client certificate for raw connections (%s); asking "
                            "again in %.0f s", e, RETRY_SECONDS)
            except Exception as e:  # the cluster away for a moment: never stop the agent
                log.warning("client certificate: %s: %s; retrying in %.0f s",
                            type(e).__name__, e, RETRY_SECONDS)
            if in_use is not None and expired(in_use, self._clock()):
                self._withdraw()  # not renewed in time: the per-request path serves
                in_use = None
            self.ready.set()
            await self._sleep(wait)

    async def _current(self) -> ClientCertificate:
        found = await self._store.load_certificate()
        if due(found, self._clock()):
            found = await self._issue()
            await self._store.save_certificate(found)
            log.info("obtained a client certificate for raw connections, valid until %s",
                     found.certificate.not_valid_after_utc.isoformat())
        assert found is not None
        return found

    def _withdraw(self) -> None:
        if self.endpoint is not None:
            log.warning("the client certificate expired before it was renewed; serving the "
                        "hub per request until a new one is signed")
            self.endpoint = None
            self.certificate = None
            self.changed.set()

    def _use(self, found: ClientCertificate) -> None:
        assert self._ca_pem is not None
        first = self.endpoint is None
        self.certificate = found
        self.endpoint = replace(self._apiserver, ssl=found.ssl_context(self._ca_pem),
                                credentials={})
        if first:
            self.changed.set()  # the tunnels reconnect to offer `connect`


async def serve_connection(stream: Stream, where: Endpoint | None) -> None:
    """Join the stream to a new TLS connection to the apiserver until either ends."""
    if where is None:
        await stream.reset("this agent has no client certificate for raw connections")
        return
    try:
        reader, writer = await connect(where)
    except DialError as e:
        await stream.reset(f"apiserver unreachable from the agent: {e}")
        return
    await splice(SocketEnd(reader, writer), StreamEnd(stream))
