"""HTTP/1.1 to the local apiserver for tunnel requests: h11 over pooled TLS connections.

Every kubectl call through a registered cluster's tunnel is one request here. httpx
(over httpcore and anyio) did TLS in Python and went through several layers per
request; this keeps a few keep-alive connections on the event loop's own TLS instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h11

from kubeglobe import failures
from kubeglobe.kube.upgrade import Endpoint, connect

log = logging.getLogger("kubeglobe.agent.apiserver")
READ_SIZE = 256 * 1024
MAX_IDLE = 8


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    state: h11.Connection

    def reusable(self) -> bool:
        return (self.state.our_state is h11.IDLE and self.state.their_state is h11.IDLE
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class Reply:
    """The apiserver's answer: status, headers, then the body as it arrives."""

    def __init__(self, pool: ApiserverHttp, conn: _Connection, head: h11.Response) -> None:
        self._pool = pool
        self._conn = conn
        self.status = head.status_code
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
        self._done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            event = await _next_event(self._conn)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
                return

    def release(self) -> None:
        """Give the connection back (after the whole body) or close it (before)."""
        if self._done:
            self._conn.state.start_next_cycle()
            self._pool.put_back(self._conn)
        else:
            self._conn.close()


async def _next_event(conn: _Connection) -> object:
    while True:
        event = conn.state.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await conn.reader.read(READ_SIZE)
        conn.state.receive_data(data)  # b"" is the end of the stream: h11 knows if early


class ApiserverHttp:
    def __init__(self, where: Endpoint) -> None:
        self._where = where
        self._idle: list[_Connection] = []

    def put_back(self, conn: _Connection) -> None:
        if conn.reusable() and len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: AsyncIterator[bytes] | None) -> Reply:
        """Send the request (`target`: path and query) and read the answer's head; an idle
        connection the apiserver closed meanwhile costs a retry on a new one, when no body
        was sent yet. Raises DialError or h11.ProtocolError."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.reusable():
                conn.close()
                continue
            try:
                return await self._exchange(conn, method, target, headers, body)
            except (ConnectionError, h11.RemoteProtocolError) as e:
                conn.close()
                if body is not None:
                    raise
                # Expected now and then (the apiserver closes idle keep-alives): INFO,
                # and counted, so a pool that loses every connection shows in the metric.
                failures.caught(log, component="apiserver-http",
                                operation="reusing an idle connection", error=e,
                                level=logging.INFO)
        reader, writer = await connect(self._where, limit=READ_SIZE)
        fresh = _Connection(reader, writer, h11.Connection(h11.CLIENT))
        return await self._exchange(fresh, method, target, headers, body)

    async def _exchange(self, conn: _Connection, method: str, target: str,
                        headers: list[tuple[str, str]],
                        body: AsyncIterator[bytes] | None) -> Reply:
        w = self._where
        framing = [("Transfer-Encoding", "chunked")] if body is not None else (
            [("Content-Length", "0")] if method in ("POST", "PUT", "PATCH") else [])
        try:
            request = h11.Request(method=method, target=w.base_path + target,
                                  headers=[("Host", w.authority), *w.credentials.items(),
                                           *headers, *framing])
            conn.writer.write(conn.state.send(request) or b"")
            if body is not None:
                async for chunk in body:
                    if chunk:
                        conn.writer.write(conn.state.send(h11.Data(data=chunk)) or b"")
                        await conn.writer.drain()
            conn.writer.write(conn.state.send(h11.EndOfMessage()) or b"")
            await conn.writer.drain()
            while True:
                event = await _next_event(conn)
                if isinstance(event, h11.Response):
                    return Reply(self, conn, event)
                if isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the apiserver closed the connection")
                # an InformationalResponse (100 Continue): the real answer follows
        except BaseException:  # cleanup only (cancellation too): a half-used connection
            conn.close()       # is never reused; the error goes on to the caller
            raise

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
            try:
                await conn.writer.wait_closed()
            except OSError as e:  # a socket or TLS error while closing: nothing to undo
                failures.caught(log, component="apiserver-http",
                                operation="closing an idle connection", error=e,
                                level=logging.INFO)
        self._idle.clear()
