"""`kubeglobe dns`: the cluster's DNS server, run as pods in every cluster.

It keeps live copies of the cluster's Services and Endpoints (informers: list, then
watch), recomputes the zone (`records.zone`, pure) whenever they change, and answers
UDP and TCP queries on port 53 from it (`answer.answer`, pure). Names outside the
cluster's domain go to the nameservers of the pod's own resolv.conf (dnsPolicy
Default: the node's), or are refused when there are none. It listens only once both
copies are there, so a readiness probe on its port means it answers from a full zone;
while a copy is broken it keeps answering from the last good zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass, field
from typing import cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.resolver
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Endpoints, Service
from prometheus_client import Counter

from kubeglobe.dns.answer import answer
from kubeglobe.dns.records import Zone, zone
from kubeglobe.failures import caught, count
from kubeglobe.kube.informer import Informer, namespaced_name

log = logging.getLogger("kubeglobe.dns")
FORWARD_SECONDS = 2.0
QUERIES = Counter("kubeglobe_dns_queries_total", "DNS queries answered", ["rcode"])


def upstreams(resolv_conf: str = "/etc/resolv.conf", *, not_: set[str]) -> list[str]:
    """The nameservers of `resolv_conf`, except our own addresses."""
    try:
        found = dns.resolver.Resolver(filename=resolv_conf).nameservers
    except (OSError, dns.resolver.NoResolverConfiguration):
        return []
    return [str(n) for n in found if str(n) not in not_]


@dataclass
class DnsServer:
    client: AsyncClient
    domain: str = "cluster.local"
    forward_to: list[str] = field(default_factory=list)
    zone: Zone | None = None

    async def run(self, host: str, port: int) -> None:
        changed = asyncio.Event()
        services, endpoints = (  # of every namespace ("*")
            Informer(self.client, kind, namespace="*", changed=changed, key=namespaced_name)
            for kind in (Service, Endpoints))
        for informer in (services, endpoints):
            informer.start()
        try:
            while self.zone is None:
                await changed.wait()
                changed.clear()
                self._rebuild(services, endpoints)
            loop = asyncio.get_running_loop()
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(host, port))
            tcp = await asyncio.start_server(self._serve_tcp, host, port)
            log.info("answering %s on %s:%d (udp, tcp); forwarding others to %s",
                     self.domain, host, port, ", ".join(self.forward_to) or "nobody")
            try:
                while True:
                    await changed.wait()
                    changed.clear()
                    self._rebuild(services, endpoints)
            finally:
                udp.close()
                tcp.close()
        finally:
            for informer in (services, endpoints):
                await informer.stop()

    def _rebuild(self, services: Informer, endpoints: Informer) -> None:
        svcs, eps = services.items(), endpoints.items()
        if svcs is None or eps is None:
            return  # a copy is broken or not there yet: keep answering from the last zone
        self.zone = zone([s.to_dict() for s in svcs.values()],
                         [e.to_dict() for e in eps.values()], self.domain)

    async def reply(self, wire: bytes, *, udp: bool = False) -> bytes | None:
        """The answer to one query in wire format (None: unreadable, dropped). Over UDP
        an answer larger than the client takes (512 bytes, or its EDNS size) is sent
        truncated (TC), and the client asks again over TCP."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException as e:
            count(component="dns", operation="reading a query", error=e)
            return None
        assert self.zone is not None  # we listen only once there is one
        reply = answer(query, self.zone)
        if reply is None:
            reply = await self._forward(query)
        QUERIES.labels(dns.rcode.to_text(reply.rcode())).inc()
        limit = max(512, query.payload) if udp else 65535
        try:
            return reply.to_wire(max_size=limit)
        except dns.exception.TooBig:
            short = dns.message.make_response(query)
            short.flags |= dns.flags.TC
            return short.to_wire()

    async def _forward(self, query: dns.message.Message) -> dns.message.Message:
        for upstream in self.forward_to:
            try:
                return await dns.asyncquery.udp(query, upstream, timeout=FORWARD_SECONDS)
            except (dns.exception.DNSException, OSError) as e:
                caught(log, component="dns", operation=f"forwarding to {upstream}", error=e,
                       level=logging.INFO)
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL if self.forward_to else dns.rcode.REFUSED)
        return reply

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        """DNS over TCP: each message behind its two-byte length (RFC 1035 4.2.2)."""
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = await self.reply(await reader.readexactly(size))
                if wire is None:
                    break
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client is done (a probe connects and goes): nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is one without deriving from asyncio's class
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        wire = await self._server.reply(data, udp=True)
        if wire is not None and self._transport is not None:
            self._transport.sendto(wire, addr)
