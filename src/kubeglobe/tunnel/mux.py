"""Streams multiplexed over one message transport, with per-stream flow control.

A sender may have at most `WINDOW` bytes in flight per stream; the receiver grants
more as its reader consumes data, so a slow reader makes the far sender wait instead
of making anyone buffer without bound. Closing the transport ends every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from kubeglobe.failures import count
from kubeglobe.kube.pipe import Sink
from kubeglobe.tunnel.frames import (
    Frame,
    FrameError,
    Kind,
    decode,
    encode,
    json_frame,
    window_frame,
)

WINDOW = 1024 * 1024
MAX_DATA_FRAME = 256 * 1024
log = logging.getLogger("kubeglobe.tunnel")


class Transport(Protocol):
    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes: ...


class StreamClosed(ConnectionError):
    pass


class Stream:
    """One bidirectional byte stream with a request (`meta`) and a response `head`."""

    def __init__(self, mux: Multiplexer, ident: int, meta: Any = None) -> None:
        self._mux = mux
        self.id = ident
        self.meta = meta
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._head: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._credit = WINDOW
        self._credit_changed = asyncio.Event()
        self._unacked = 0
        self._error: str | None = None
        self._sent_end = False
        self._sink: Sink | None = None
        self._poured: asyncio.Future[None] | None = None
        self._granting: asyncio.Task[None] | None = None

    # -- sending -------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._error is not None:
                raise StreamClosed(self._error)
            if self._credit <= 0:
                self._credit_changed.clear()
                await self._credit_changed.wait()
                continue
            size = min(len(view), self._credit, MAX_DATA_FRAME)
            self._credit -= size
            await self._mux.send(Frame(Kind.DATA, self.id, bytes(view[:size])))
            view = view[size:]

    async def send_end(self) -> None:
        if not self._sent_end and self._error is None:
            self._sent_end = True
            await self._mux.send(Frame(Kind.END, self.id))

    async def send_head(self, head: Any) -> None:
        await self._mux.send(json_frame(Kind.HEAD, self.id, head))

    async def reset(self, reason: str) -> None:
        if self._error is None:
            self._fail(reason)
            with contextlib.suppress(ConnectionError):
                await self._mux.send(Frame(Kind.RESET, self.id, reason.encode()))
        self._mux.forget(self.id)

    # -- receiving -----------------------------------------------------------------
    async def head(self) -> Any:
        return await self._head

    async def recv(self) -> bytes | None:
        """The next chunk, or None once the peer has ended its side."""
        chunk = await self._inbox.get()
        if chunk is None:
            if self._error is not None:
                raise StreamClosed(self._error)
            return None
        self._unacked += len(chunk)
        if self._unacked >= WINDOW // 2:
            grant, self._unacked = self._unacked, 0
            with contextlib.suppress(ConnectionError):
                await self._mux.send(window_frame(self.id, grant))
        return chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        """`recv` until the peer has ended its side."""
        while (chunk := await self.recv()) is not None:
            yield chunk

    async def pour_into(self, sink: Sink) -> None:
        """`recv` into `sink` without a task switch per chunk (an interactive exec echoes
        each keystroke through here), until the peer ends; StreamClosed if it fails.
        Credit goes back only once the sink has drained: a slow sink holds the sender."""
        while not self._inbox.empty():  # what arrived before we were here
            chunk = self._inbox.get_nowait()
            if chunk is None:
                if self._error is not None:
                    raise StreamClosed(self._error)
                return
            try:
                self._put(sink, chunk)
            except ConnectionError as e:
                raise StreamClosed(str(e) or "the far side went away") from e
        self._sink = sink
        self._poured = asyncio.get_running_loop().create_future()
        try:
            await self._poured
        finally:
            self._sink = None

    def _put(self, sink: Sink, chunk: bytes) -> None:
        sink.put(chunk)
        self._unacked += len(chunk)
        if self._unacked >= WINDOW // 2 and self._granting is None:
            self._granting = asyncio.create_task(self._grant_when_drained(sink))

    async def _grant_when_drained(self, sink: Sink) -> None:
        try:
            await sink.drain()
            grant, self._unacked = self._unacked, 0
            await self._mux.send(window_frame(self.id, grant))
        except ConnectionError as e:
            self._end_pour(StreamClosed(str(e) or "the far side went away"))
        finally:
            self._granting = None

    def _end_pour(self, error: BaseException | None) -> None:
        if self._poured is not None and not self._poured.done():
            if error is None:
                self._poured.set_result(None)
            else:
                self._poured.set_exception(error)

    # -- called by the multiplexer --------------------------------------------------
    def _deliver(self, frame: Frame) -> None:
        if frame.kind is Kind.DATA:
            if self._sink is None:
                self._inbox.put_nowait(frame.payload)
                return
            try:
                self._put(self._sink, frame.payload)
            except ConnectionError as e:
                self._end_pour(StreamClosed(str(e) or "the far side went away"))
        elif frame.kind is Kind.END:
            if self._sink is None:
                self._inbox.put_nowait(None)
            else:
                self._end_pour(None)
        elif frame.kind is Kind.HEAD:
            if not self._head.done():
                self._head.set_result(frame.json())
        elif frame.kind is Kind.WINDOW:
            self._credit += frame.credit()
            self._credit_changed.set()
        elif frame.kind is Kind.RESET:
            self._fail(frame.payload.decode(errors="replace") or "reset by peer")

    def _fail(self, reason: str) -> None:
        self._error = reason
        if not self._head.done():
            self._head.set_exception(StreamClosed(reason))
            self._head.exception()  # mark it seen: the agent's side never awaits a head
        self._inbox.put_nowait(None)
        self._credit_changed.set()
        self._end_pour(StreamClosed(reason))
        if self._granting is not None:
            self._granting.cancel()


Handler = Callable[[Stream], Awaitable[None]]


class Multiplexer:
    """Both ends use this: the hub opens streams, the agent accepts them."""

    def __init__(self, transport: Transport, *, on_open: Handler | None = None,
                 first_id: int = 1) -> None:
        self._transport = transport
        self._on_open = on_open
        self._streams: dict[int, Stream] = {}
        self._next_id = first_id
        self._send_lock = asyncio.Lock()
        self._closed: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def send(self, frame: Frame) -> None:
        if self._closed is not None:
            raise StreamClosed(self._closed)
        async with self._send_lock:
            await self._transport.send(encode(frame))

    def forget(self, ident: int) -> None:
        self._streams.pop(ident, None)

    async def open(self, meta: Any) -> Stream:
        ident = self._next_id
        self._next_id += 2  # odd from the hub, even from the agent: never collide
        stream = Stream(self, ident, meta)
        self._streams[ident] = stream
        await self.send(json_frame(Kind.OPEN, ident, meta))
        return stream

    async def run(self) -> None:
        """Read frames until the transport fails; then every stream fails too."""
        reason = "tunnel closed"
        try:
            while True:
                frame = decode(await self._transport.recv())
                self._dispatch(frame)
        except FrameError as e:
            reason = f"tunnel protocol error: {e}"
            log.warning(reason)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
            reason = f"tunnel closed: {e}" if str(e) else "tunnel closed"
        except Exception as e:  # broad on purpose: the transport is injected, and a closed
            # WebSocket raises its own library's errors (websockets, Starlette); a frame
            # that does not decode ends the tunnel the same way
            count(component="tunnel", operation="receive", error=e)
            reason = f"tunnel closed: {type(e).__name__}: {e}"
        finally:
            self._closed = reason
            for stream in list(self._streams.values()):
                stream._fail(reason)
            self._streams.clear()
            for task in list(self._tasks):
                task.cancel()

    def _dispatch(self, frame: Frame) -> None:
        if frame.kind is Kind.OPEN:
            if self._on_open is None:
                raise FrameError("this side does not accept streams")
            stream = Stream(self, frame.stream, frame.json())
            self._streams[frame.stream] = stream
            task = asyncio.create_task(self._serve(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        known = self._streams.get(frame.stream)
        if known is None:
            return  # a late frame for a stream already finished: nothing to do
        known._deliver(frame)
        if frame.kind is Kind.RESET:
            self.forget(frame.stream)

    async def _serve(self, stream: Stream) -> None:
        assert self._on_open is not None
        try:
            await self._on_open(stream)
        except StreamClosed:
            pass
        except Exception as e:  # broad on purpose: one failing stream must not end the tunnel
            log.warning("stream %s failed", stream.id, exc_info=True)
            count(component="tunnel", operation="serve stream", error=e)
            await stream.reset(f"agent error: {type(e).__name__}: {e}")
        finally:
            self.forget(stream.id)
