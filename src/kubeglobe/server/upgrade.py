"""uvicorn glue: non-WebSocket upgrades to the cluster proxy leave ASGI here.

ASGI can answer `101 Switching Protocols` only for WebSockets, and kubectl upgrades
exec, attach and port-forward to SPDY/3.1, so such a request on `/clusters/{name}/k8s/`
is taken off uvicorn and its raw connection (with any bytes read past the request head)
goes to the `StreamProxy`. This leans on two methods of uvicorn's `H11Protocol`
(`_should_upgrade`, `handle_websocket_upgrade`): uvicorn is pinned in constraints.txt,
and a new version must be checked against them (tests/integration/test_streams.py).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from kubeglobe.kube.http1 import StreamRoute, stream_route
from kubeglobe.kube.pipe import READ_SIZE, SocketEnd
from kubeglobe.server.streams import Incoming, StreamProxy

log = logging.getLogger("kubeglobe.streams")


def raw_end(transport: asyncio.Transport, buffered: bytes) -> SocketEnd:
    """Asyncio streams over a connection taken from another protocol."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    if buffered:
        reader.feed_data(buffered)
    transport.resume_reading()
    return SocketEnd(reader, asyncio.StreamWriter(transport, protocol, reader, loop))


def upgrade_protocol(streams: StreamProxy) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, handing stream upgrades to `streams`."""
    tasks: set[asyncio.Task[None]] = set()

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stream handler failed", exc_info=task.exception())

    class StreamUpgradeProtocol(H11Protocol):
        def _text_headers(self) -> list[tuple[str, str]]:
            return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]

        def _stream_route(self) -> StreamRoute | None:
            target = self.scope["raw_path"].decode("latin-1")
            query = self.scope["query_string"].decode("latin-1")
            return stream_route(target + ("?" + query if query else ""), self._text_headers())

        def _should_upgrade(self) -> bool:
            if self._stream_route() is not None:
                return True
            return bool(super()._should_upgrade())

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            route = self._stream_route()
            if route is None:
                super().handle_websocket_upgrade(event)
                return
            # From here on the connection is the stream's, not uvicorn's.
            self.connections.discard(self)
            buffered, _ = self.conn.trailing_data
            incoming = Incoming(
                method=event.method.decode("ascii"), headers=self._text_headers(),
                route=route)
            caller = raw_end(self.transport, bytes(buffered))
            task = self.loop.create_task(streams.serve(incoming, caller))
            tasks.add(task)
            task.add_done_callback(finished)

    return StreamUpgradeProtocol
