"""Raw byte pipes: a socket or a tunnel stream on each end, bytes copied both ways.

An upgraded connection (exec, attach, port-forward) is carried as bytes only. Each
direction copies until its source ends, then half-closes its destination when the
destination can (a tunnel stream can: END; a TLS socket cannot), otherwise the whole
pipe ends. An error on either side ends both, so the far end learns at once. Every
read waits for the previous write to be accepted (socket drained, tunnel window
granted): a slow reader slows the writer, nobody buffers without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from kubeglobe.tunnel.mux import Sink, Stream

READ_SIZE = 512 * 1024


class End(Protocol):
    async def read(self) -> bytes | None:
        """The next bytes, or None when the far side has ended its direction."""

    async def write(self, data: bytes) -> None: ...

    async def end(self) -> bool:
        """Half-close our sending direction; False if this end cannot."""

    async def close(self, error: str | None) -> None:
        """Release the end; with an error, make sure the far side sees one."""


class SocketEnd:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes | None:
        data = await self.reader.read(READ_SIZE)
        return data or None

    async def write(self, data: bytes) -> None:
        self.put(data)
        await self.writer.drain()

    def put(self, data: bytes) -> None:
        if self.writer.transport.is_closing():
            raise ConnectionError("the connection is closed")
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    async def end(self) -> bool:
        if not self.writer.can_write_eof():
            return False
        self.writer.write_eof()
        return True

    async def close(self, error: str | None) -> None:
        if error is not None:
            self.writer.transport.abort()  # no orderly close: the peer sees a broken stream
            return
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), timeout=5)


class StreamEnd:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    async def read(self) -> bytes | None:
        return await self.stream.recv()

    async def write(self, data: bytes) -> None:
        await self.stream.send(data)

    async def end(self) -> bool:
        await self.stream.send_end()
        return True

    async def close(self, error: str | None) -> None:
        # Reset even after a clean finish: it frees the stream on both sides at once.
        with contextlib.suppress(ConnectionError):
            await self.stream.reset(error or "stream finished")


class _Ended(Exception):
    """One direction ended and its destination cannot half-close: the pipe is done."""


async def _copy(src: End, dst: End) -> None:
    if isinstance(src, StreamEnd) and isinstance(dst, Sink):
        await src.stream.pour_into(dst)  # no task switch per chunk
    else:
        while (data := await src.read()) is not None:
            await dst.write(data)
    if not await dst.end():
        raise _Ended


async def splice(a: End, b: End) -> str | None:
    """Copy both ways until both directions end or one fails; close both ends.

    Returns None after a clean finish, or what went wrong.
    """
    tasks = {asyncio.create_task(_copy(a, b)), asyncio.create_task(_copy(b, a))}
    error: str | None = None
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            failure = next((t.exception() for t in done if t.exception() is not None), None)
            if failure is not None:
                if not isinstance(failure, _Ended):
                    error = f"{type(failure).__name__}: {failure}".rstrip(": ")
                break
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await asyncio.gather(a.close(error), b.close(error), return_exceptions=True)
    return error
