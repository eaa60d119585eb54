"""Agent tunnels on the hub side: accept them, carry requests for their clusters.

An agent keeps one tunnel to every API server replica, so a request for its cluster
goes through the tunnel of the replica it arrives at: any replica can serve, and none
hands a request to another. A replica without the cluster's tunnel answers with a
Status saying so. Tunnels are kept in memory only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from lightkube import AsyncClient
from prometheus_client import Gauge

from kubeglobe.api.meta import CLUSTER_HEADER
from kubeglobe.hub.registration import check_agent_credential
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.status import parse_bearer
from kubeglobe.server.proxy import forward_headers, is_small, relay, relayed_headers
from kubeglobe.tunnel.mux import Multiplexer, StreamClosed

log = logging.getLogger("kubeglobe.tunnels")
TUNNELS = Gauge("kubeglobe_agent_tunnels", "Agent tunnels this API server replica holds",
                ["cluster"])


async def calling_agent(hub: AsyncClient, headers: Mapping[str, str]) -> str | None:
    """The cluster whose agent is calling, if its credential is that cluster's."""
    cluster = headers.get(CLUSTER_HEADER, "")
    credential = parse_bearer(headers.get("authorization", ""))
    if credential is None or not cluster:
        return None
    return cluster if await check_agent_credential(hub=hub, cluster=cluster,
                                                   credential=credential) else None


def no_tunnel(cluster: str) -> str:
    """What a replica without the cluster's tunnel says (the caller may retry: another
    replica, or this one a moment later, may hold it)."""
    return (f"the agent of cluster {cluster} has no tunnel to this API server replica; it "
            "reconnects by itself once it can reach the hub: retry")


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


@dataclass(eq=False)
class TunnelHub:
    hub: AsyncClient
    _local: dict[str, Multiplexer] = field(default_factory=dict)

    # -- agents connecting -------------------------------------------------------------
    async def accept(self, ws: WebSocket) -> None:
        cluster = await calling_agent(self.hub, ws.headers)
        if cluster is None:
            await ws.close(code=4401, reason="unknown cluster or agent credential")
            return
        await ws.accept()
        mux = Multiplexer(WebSocketTransport(ws))
        old = self._local.get(cluster)
        if old is not None and not old.closed:
            log.info("cluster %s: a newer tunnel replaces the older one here", cluster)
        self._local[cluster] = mux
        TUNNELS.labels(cluster).set(1)
        log.info("agent of cluster %s connected", cluster)
        try:
            await mux.run()
        finally:
            if self._local.get(cluster) is mux:
                del self._local[cluster]
                TUNNELS.remove(cluster)
            log.info("agent of cluster %s disconnected", cluster)
            # closing a WebSocket the agent already closed raises; there is nothing to do
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await ws.close()

    def local(self, cluster: str) -> Multiplexer | None:
        """The cluster's tunnel if this replica holds it, open."""
        mux = self._local.get(cluster)
        return mux if mux is not None and not mux.closed else None

    # -- requests through the tunnel ----------------------------------------------------
    async def forward(self, *, cluster: str, path: str, request: Request,
                      identity: Identity) -> Response:
        mux = self.local(cluster)
        if mux is None:  # client-go retries a 503 with Retry-After (HAProxy: another replica)
            raise HTTPException(503, detail=no_tunnel(cluster), headers={"Retry-After": "1"})
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


async def serve_tunnel(hub: TunnelHub, ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        await hub.accept(ws)
