"""Per-cluster UNIX sockets: the gateway's way into a registered cluster's tunnel.

While this replica holds a cluster's tunnel and the agent offers raw connections, the
replica listens on `<directory>/<cluster>.sock` (`gateway/sockets.py` names it). HAProxy,
having authenticated the caller and set the impersonation headers, sends the cluster's
requests there; each connection becomes one tunnel stream marked `connect`, which the
agent joins to a TLS connection to its apiserver. Nothing here reads HTTP: bytes are
copied both ways, with the tunnel's flow control, and a keep-alive connection carries
request after request. When the tunnel ends the socket is closed and removed, so
HAProxy's check marks this replica down for the cluster at once.

A connection that sends nothing before it closes (HAProxy's check) opens no stream.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kubeglobe.gateway.sockets import cluster_socket
from kubeglobe.tunnel.frames import CONNECT
from kubeglobe.tunnel.mux import Multiplexer, StreamClosed
from kubeglobe.tunnel.pipe import READ_SIZE, SocketEnd, StreamEnd, splice

log = logging.getLogger("kubeglobe.cluster_sockets")
CONNECT_META = {CONNECT: "apiserver"}


class ClusterSockets:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._servers: dict[str, asyncio.Server] = {}
        self._tunnels: dict[str, Multiplexer] = {}
        self._connections: set[asyncio.Task[None]] = set()

    def prepare(self) -> None:
        """Make the directory (private) and remove sockets a previous run left."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._dir.chmod(0o700)
        for stale in self._dir.glob("*.sock"):
            stale.unlink(missing_ok=True)

    async def open(self, cluster: str, tunnel: Multiplexer) -> None:
        """Serve `cluster` through `tunnel` (a newer tunnel replaces the older one)."""
        self._tunnels[cluster] = tunnel
        if cluster in self._servers:
            return
        path = cluster_socket(self._dir, cluster)
        if path is None:
            log.info("cluster %s: socket path too long; it is served per request", cluster)
            return
        path.unlink(missing_ok=True)
        self._servers[cluster] = await asyncio.start_unix_server(
            lambda r, w: self._accept(cluster, r, w), path=str(path), limit=READ_SIZE)
        path.chmod(0o600)
        log.info("cluster %s: raw connections served on %s", cluster, path)

    async def close(self, cluster: str) -> None:
        """Stop taking connections for `cluster`; open ones end with their tunnel."""
        self._tunnels.pop(cluster, None)
        server = self._servers.pop(cluster, None)
        if server is None:
            return
        path = cluster_socket(self._dir, cluster)
        if path is not None:
            path.unlink(missing_ok=True)
        server.close()

    async def aclose(self) -> None:
        for cluster in list(self._servers):
            await self.close(cluster)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(self, cluster: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._carry(cluster, reader, writer)
        finally:
            self._connections.discard(task)

    async def _carry(self, cluster: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        caller = SocketEnd(reader, writer)
        try:
            first = await reader.read(READ_SIZE)
        except ConnectionError:
            first = b""
        tunnel = self._tunnels.get(cluster)
        if not first or tunnel is None or tunnel.closed:
            # HAProxy's check (nothing sent), or the tunnel went a moment ago: HAProxy
            # answers the caller with the backend's 502 Status.
            await caller.close(None if not first else "no tunnel")
            return
        try:
            stream = await tunnel.open(CONNECT_META)
            await stream.send(first)
        except StreamClosed as e:
            await caller.close(str(e))
            return
        error = await splice(caller, StreamEnd(stream))
        if error is not None:
            log.debug("connection to cluster %s ended: %s", cluster, error)
