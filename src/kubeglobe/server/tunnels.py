"""Agent tunnels on the hub side: accept them, know where they are, carry requests.

An agent keeps one tunnel to every API server replica (it learns them from
`/api/v1/agent/replicas`), so a request for its cluster is normally sent through the
tunnel of the replica it arrives at. Each replica keeps its tunnels in memory and
publishes, per cluster, a Lease `kubeglobe-tunnel-<cluster>-<replica>` naming itself,
renewed while the tunnel lives. A request that arrives at a replica without a tunnel
for the cluster (the agent has not reached it yet) is passed, unchanged (the caller's
own token included), to a replica whose Lease is fresh.

When the agent offers raw connections (feature `connect`, it holds a client certificate
for its apiserver) and the replica has a directory for the gateway, the replica also
opens the cluster's socket there (`cluster_sockets.py`): HAProxy then sends the
cluster's requests as bytes, with no per-request work in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from starlette.background import BackgroundTask

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.registration import check_agent_credential
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.microtime import micro_now
from kubeglobe.kube.ttl import TtlCache
from kubeglobe.server.cluster_sockets import ClusterSockets
from kubeglobe.server.proxy import forward_headers, is_small, relay, relayed_headers
from kubeglobe.tunnel.frames import CLUSTER_HEADER, CONNECT, FEATURES_HEADER
from kubeglobe.tunnel.mux import Multiplexer, StreamClosed

log = logging.getLogger("kubeglobe.tunnels")
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
FORWARDED_HEADER = "X-KubeGlobe-Forwarded"


TUNNEL_CLUSTER_LABEL = "kubeglobe.io/tunnel-cluster"


def replica_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:10]


def lease_name(cluster: str, replica_url: str) -> str:
    return f"kubeglobe-tunnel-{cluster}-{replica_id(replica_url)}"


def fresh(spec: LeaseSpec | None, now: dt.datetime) -> bool:
    if spec is None or spec.renewTime is None or spec.holderIdentity is None:
        return False
    return (now - spec.renewTime).total_seconds() < (spec.leaseDurationSeconds
                                                     or LEASE_SECONDS)


class WebSocketTransport:
    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def recv(self) -> bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise ConnectionError("agent disconnected")
        data = message.get("bytes")
        if data is None:
            raise ConnectionError("agent sent a text frame")
        return bytes(data)


@dataclass
class TunnelSettings:
    advertise_url: str  # how other replicas reach this one
    peer_ca: str | None = None  # CA of the replicas' serving certificates
    cluster_sockets: Path | None = None  # where the gateway finds per-cluster sockets


@dataclass(eq=False)
class TunnelHub:
    hub: AsyncClient
    settings: TunnelSettings
    _local: dict[str, Multiplexer] = field(default_factory=dict)
    _peer: httpx.AsyncClient | None = None
    _holders: TtlCache[str, str | None] = field(default_factory=lambda: TtlCache(1.0))
    _sockets: ClusterSockets | None = None

    def __post_init__(self) -> None:
        if self.settings.cluster_sockets is not None:
            self._sockets = ClusterSockets(self.settings.cluster_sockets)
            self._sockets.prepare()

    # -- agents connecting -------------------------------------------------------------
    async def accept(self, ws: WebSocket) -> None:
        cluster = ws.headers.get(CLUSTER_HEADER, "")
        scheme, _, credential = ws.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not cluster or not await check_agent_credential(
                hub=self.hub, cluster=cluster, credential=credential.strip()):
            await ws.close(code=4401, reason="unknown cluster or agent credential")
            return
        await ws.accept()
        mux = Multiplexer(WebSocketTransport(ws))
        old = self._local.get(cluster)
        if old is not None and not old.closed:
            log.info("cluster %s: a newer tunnel replaces the older one here", cluster)
        self._local[cluster] = mux
        features = {f.strip() for f in ws.headers.get(FEATURES_HEADER, "").split(",")}
        log.info("agent of cluster %s connected (offers: %s)", cluster,
                 ", ".join(sorted(features - {""})) or "requests")
        if self._sockets is not None:
            if CONNECT in features:
                await self._sockets.open(cluster, mux)
            else:
                await self._sockets.close(cluster)
        renewer = asyncio.create_task(self._publish(cluster, mux))
        try:
            await mux.run()
        finally:
            renewer.cancel()
            if self._local.get(cluster) is mux:
                del self._local[cluster]
                if self._sockets is not None:
                    await self._sockets.close(cluster)
                await self._withdraw(cluster)
            log.info("agent of cluster %s disconnected", cluster)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _publish(self, cluster: str, mux: Multiplexer) -> None:
        """Hold this replica's tunnel Lease for the cluster while the tunnel lives."""
        connected = micro_now()
        me = self.settings.advertise_url
        name = lease_name(cluster, me)
        while not mux.closed:
            lease = Lease(metadata=ObjectMeta(name=name, namespace=SYSTEM_NAMESPACE,
                                              labels={TUNNEL_CLUSTER_LABEL: cluster}),
                          spec=LeaseSpec(holderIdentity=me, leaseDurationSeconds=LEASE_SECONDS,
                                         acquireTime=connected, renewTime=micro_now()))
            try:
                await self.hub.apply(lease, field_manager="kubeglobe-tunnel", force=True)
            except ApiError as e:
                log.warning("publishing tunnel lease of %s: %s", cluster, e.status.message)
            except Exception as e:  # the hub unreachable for a moment: retry, never stop
                log.warning("publishing tunnel lease of %s: %s", cluster, e)
            await asyncio.sleep(RENEW_SECONDS)

    async def _withdraw(self, cluster: str) -> None:
        """No tunnel here any more: stop naming this replica (best effort; else the
        Lease simply goes stale)."""
        with contextlib.suppress(Exception):
            await self.hub.delete(Lease, lease_name(cluster, self.settings.advertise_url),
                                  namespace=SYSTEM_NAMESPACE)

    async def holder(self, cluster: str) -> str | None:
        """Another replica holding a live tunnel of the cluster (the freshest), if any."""
        now = dt.datetime.now(dt.UTC)
        best: tuple[dt.datetime, str] | None = None
        async for lease in self.hub.list(Lease, namespace=SYSTEM_NAMESPACE,
                                         labels={TUNNEL_CLUSTER_LABEL: cluster}):
            spec = lease.spec
            if not fresh(spec, now) or spec is None or spec.renewTime is None:
                continue
            holder = spec.holderIdentity or ""
            if holder != self.settings.advertise_url and (best is None
                                                          or spec.renewTime > best[0]):
                best = (spec.renewTime, holder)
        return None if best is None else best[1]

    def local(self, cluster: str) -> Multiplexer | None:
        """The cluster's tunnel if this replica holds it, open."""
        mux = self._local.get(cluster)
        return mux if mux is not None and not mux.closed else None

    def connected_here(self, cluster: str) -> bool:
        mux = self._local.get(cluster)
        return mux is not None and not mux.closed

    # -- requests through the tunnel ----------------------------------------------------
    async def forward(self, *, cluster: str, path: str, request: Request,
                      identity: Identity) -> Response:
        mux = self._local.get(cluster)
        if mux is not None and not mux.closed:
            return await self._through_tunnel(mux, cluster, path, request, identity)
        if request.headers.get(FORWARDED_HEADER):
            raise HTTPException(503, detail=f"the agent of cluster {cluster} just left this "
                                "replica; retry")
        holder = await self._holders.get(cluster, lambda: self.holder(cluster))
        if holder is None:
            raise HTTPException(503, detail=f"the agent of cluster {cluster} is not connected "
                                "(no replica holds its tunnel); it reconnects by itself once "
                                "it can reach the hub")
        return await self._to_peer(holder, request)

    async def _through_tunnel(self, mux: Multiplexer, cluster: str, path: str,
                              request: Request, identity: Identity) -> Response:
        has_body = bool(request.headers.get("content-length", "0") != "0"
                        or request.headers.get("transfer-encoding"))
        meta: dict[str, Any] = {
            "method": request.method, "path": "/" + path, "query": request.url.query,
            "headers": forward_headers(request.headers.items(), identity), "body": has_body,
        }
        try:
            stream = await mux.open(meta)
            if has_body:  # without one the agent reads no data: no END needed either
                async for chunk in request.stream():
                    if chunk:
                        await stream.send(chunk)
                await stream.send_end()
            head = await stream.head()
        except StreamClosed as e:
            raise HTTPException(502, detail=f"tunnel to cluster {cluster} failed: {e}") from e

        async def body() -> AsyncIterator[bytes]:
            finished = False
            try:
                while (chunk := await stream.recv()) is not None:
                    yield chunk
                finished = True  # the agent ended the stream: it has let go of it already
            finally:
                if not finished and not mux.closed:
                    await stream.reset("the client went away")
                mux.forget(stream.id)

        headers = relayed_headers((str(k), str(v)) for k, v in head["headers"])
        if is_small(headers):
            return relay(head["status"], headers, b"".join([chunk async for chunk in body()]))
        return relay(head["status"], headers, body())

    async def _to_peer(self, holder: str, request: Request) -> Response:
        if self._peer is None:
            self._peer = httpx.AsyncClient(verify=self.settings.peer_ca or True,
                                           trust_env=False, timeout=None)
        headers = [(k, v) for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "connection")]
        headers.append((FORWARDED_HEADER, "1"))
        outgoing = self._peer.build_request(
            request.method, holder.rstrip("/") + request.url.path,
            params=request.url.query.encode() or None, headers=headers,
            content=request.stream())
        try:
            upstream = await self._peer.send(outgoing, stream=True)
        except httpx.HTTPError as e:
            raise HTTPException(502, detail=f"replica {holder} holding the tunnel did not "
                                f"answer: {e}") from e
        return relay(upstream.status_code, relayed_headers(upstream.headers.multi_items()),
                     upstream.aiter_raw(), BackgroundTask(upstream.aclose))

    async def aclose(self) -> None:
        if self._peer is not None:
            await self._peer.aclose()
        if self._sockets is not None:
            await self._sockets.aclose()


async def serve_tunnel(hub: TunnelHub, ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        await hub.accept(ws)
