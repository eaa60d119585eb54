"""Agent tunnels on the hub side: accept them, know where they are, carry requests.

An agent's WebSocket lands on one API server replica. That replica keeps the tunnel in
memory and publishes a Lease `kubeglobe-tunnel-<cluster>` naming itself, renewed while
the tunnel lives. A proxied request for the cluster that arrives at another replica is
passed, unchanged (the caller's own token included), to the replica named by the Lease;
the replica holding the tunnel sends it through as one stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
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
from kubeglobe.server.proxy import _DROP_RESPONSE, forward_headers, is_small
from kubeglobe.tunnel.mux import Multiplexer, StreamClosed

log = logging.getLogger("kubeglobe.tunnels")
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
FORWARDED_HEADER = "X-KubeGlobe-Forwarded"


def lease_name(cluster: str) -> str:
    return f"kubeglobe-tunnel-{cluster}"


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


@dataclass(eq=False)
class TunnelHub:
    hub: AsyncClient
    settings: TunnelSettings
    _local: dict[str, Multiplexer] = field(default_factory=dict)
    _peer: httpx.AsyncClient | None = None
    _holders: TtlCache[str, str | None] = field(default_factory=lambda: TtlCache(1.0))

    # -- agents connecting -------------------------------------------------------------
    async def accept(self, ws: WebSocket) -> None:
        cluster = ws.headers.get("x-kubeglobe-cluster", "")
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
        log.info("agent of cluster %s connected", cluster)
        renewer = asyncio.create_task(self._publish(cluster, mux, ws))
        try:
            await mux.run()
        finally:
            renewer.cancel()
            if self._local.get(cluster) is mux:
                del self._local[cluster]
            log.info("agent of cluster %s disconnected", cluster)
            with contextlib.suppress(Exception):
                await ws.close()

    async def _publish(self, cluster: str, mux: Multiplexer, ws: WebSocket) -> None:
        """Hold the cluster's tunnel Lease while this replica holds its tunnel.

        The newest tunnel wins: an agent that reconnected elsewhere after a network cut
        took the Lease with a later acquire time, and this replica's older tunnel (whose
        peer may be gone without a word) is closed instead of fighting for the Lease.
        """
        connected = micro_now()
        me = self.settings.advertise_url
        while not mux.closed:
            try:
                current = await self.hub.get(Lease, lease_name(cluster),
                                             namespace=SYSTEM_NAMESPACE)
                spec = current.spec
                if (spec is not None and spec.holderIdentity not in (None, me)
                        and spec.acquireTime is not None and spec.acquireTime > connected):
                    log.info("cluster %s: its agent reconnected to %s; closing the tunnel "
                             "here", cluster, spec.holderIdentity)
                    await ws.close()
                    return
            except ApiError as e:
                if e.status.code != 404:
                    log.warning("reading tunnel lease of %s: %s", cluster, e.status.message)
            lease = Lease(metadata=ObjectMeta(name=lease_name(cluster),
                                              namespace=SYSTEM_NAMESPACE),
                          spec=LeaseSpec(holderIdentity=me, leaseDurationSeconds=LEASE_SECONDS,
                                         acquireTime=connected,
                                         renewTime=micro_now()))
            try:
                await self.hub.apply(lease, field_manager="kubeglobe-tunnel", force=True)
            except ApiError as e:
                log.warning("publishing tunnel lease of %s: %s", cluster, e.status.message)
            except Exception as e:  # the hub unreachable for a moment: retry, never stop
                log.warning("publishing tunnel lease of %s: %s", cluster, e)
            await asyncio.sleep(RENEW_SECONDS)

    async def holder(self, cluster: str) -> str | None:
        """The replica URL holding the cluster's tunnel, if its lease is fresh."""
        try:
            lease = await self.hub.get(Lease, lease_name(cluster), namespace=SYSTEM_NAMESPACE)
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise
        spec = lease.spec
        if spec is None or spec.renewTime is None or spec.holderIdentity is None:
            return None
        age = (dt.datetime.now(dt.UTC) - spec.renewTime).total_seconds()
        return spec.holderIdentity if age < (spec.leaseDurationSeconds or LEASE_SECONDS) else None

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
        if holder is None or holder == self.settings.advertise_url:
            where = "no replica holds its tunnel" if holder is None else (
                f"its tunnel lease names this replica ({holder}) but the tunnel is gone")
            raise HTTPException(503, detail=f"the agent of cluster {cluster} is not connected "
                                f"({where}); it reconnects by itself once it can reach the "
                                "hub")
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
            if has_body:
                async for chunk in request.stream():
                    if chunk:
                        await stream.send(chunk)
            await stream.send_end()
            head = await stream.head()
        except StreamClosed as e:
            raise HTTPException(502, detail=f"tunnel to cluster {cluster} failed: {e}") from e

        async def body() -> AsyncIterator[bytes]:
            try:
                while (chunk := await stream.recv()) is not None:
                    yield chunk
            finally:
                if not mux.closed:
                    await stream.reset("response finished or client went away")
                mux.forget(stream.id)

        headers = {k: v for k, v in head["headers"] if k.lower() not in _DROP_RESPONSE}
        if is_small(headers):
            return Response(b"".join([chunk async for chunk in body()]),
                            status_code=head["status"], headers=headers)
        return StreamingResponse(body(), status_code=head["status"], headers=headers)

    async def _to_peer(self, holder: str, request: Request) -> StreamingResponse:
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
        headers_out = {k: v for k, v in upstream.headers.items()
                       if k.lower() not in _DROP_RESPONSE}
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 headers=headers_out, background=BackgroundTask(upstream.aclose))

    async def aclose(self) -> None:
        if self._peer is not None:
            await self._peer.aclose()


async def serve_tunnel(hub: TunnelHub, ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        await hub.accept(ws)
