"""Raw byte pipes: two ends (a socket, or a tunnel stream), bytes copied both ways.

An end that cannot half-close (a TLS socket) ends the whole pipe when its direction
ends; an error on either side ends both, so the far end learns at once. Every read
waits for the previous write to be accepted, so nobody buffers without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol, runtime_checkable

READ_SIZE = 512 * 1024


class End(Protocol):
    async def read(self) -> bytes | None:
        """The next bytes, or None when the far side has ended its direction."""

    async def write(self, data: bytes) -> None: ...

    async def end(self) -> bool:
        """Half-close our sending direction; False if this end cannot."""

    async def close(self, error: str | None) -> None:
        """Release the end; with an error, make sure the far side sees one."""


@runtime_checkable
class Sink(Protocol):
    """Where an end can pour its data as it arrives: a socket's writer."""

    def put(self, data: bytes) -> None:
        """Queue bytes for writing now, without waiting; ConnectionError if closed."""

    async def drain(self) -> None:
        """Wait until the queued bytes are (mostly) written."""


@runtime_checkable
class Pours(Protocol):
    """An end that can write what it receives straight into a sink, as it arrives (no
    task switch per chunk: a tunnel stream)."""

    async def pour_into(self, sink: Sink) -> None: ...


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
        # a peer that reset the connection, or does not finish closing: it is gone anyway
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), timeout=5)


class _Ended(Exception):
    """One direction ended and its destination cannot half-close: the pipe is done."""


async def _copy(src: End, dst: End) -> None:
    if isinstance(src, Pours) and isinstance(dst, Sink):
        await src.pour_into(dst)  # no task switch per chunk
    else:
        while (data := await src.read()) is not None:
            await dst.write(data)
    if not await dst.end():
        raise _Ended


async def splice(a: End, b: End) -> str | None:
    """Copy both ways until both directions end or one fails, close both ends, and
    return what went wrong (None after a clean finish)."""
    tasks = {asyncio.create_task(_copy(a, b)), asyncio.create_task(_copy(b, a))}
    error: str | None = None
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # every finished task's outcome is read, or asyncio logs it as never retrieved
            outcomes = [t.exception() for t in done]
            failure = next((e for e in outcomes if e is not None and not isinstance(e, _Ended)),
                           next((e for e in outcomes if e is not None), None))
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
