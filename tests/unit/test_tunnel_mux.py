"""The tunnel multiplexer over an in-memory transport (pure logic, no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from kubeglobe.tunnel.mux import WINDOW, Multiplexer, Stream, StreamClosed


class Wire:
    """One direction of an in-memory transport pair."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()


class MemoryTransport:
    def __init__(self, out: Wire, into: Wire) -> None:
        self._out = out
        self._in = into

    async def send(self, data: bytes) -> None:
        await self._out.inbox.put(data)

    async def recv(self) -> bytes:
        data = await self._in.inbox.get()
        if data is None:
            raise ConnectionError("wire cut")
        return data


class SlowSink:
    """A socket-like sink whose drain waits until the test lets it."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.drained = asyncio.Event()
        self.closed = False

    def put(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("sink closed")
        self.got.append(data)

    async def drain(self) -> None:
        await self.drained.wait()


async def connected(on_open: Callable[[Stream], Awaitable[None]]
                    ) -> tuple[Multiplexer, Multiplexer, Wire, list[asyncio.Task[None]]]:
    a_to_b, b_to_a = Wire(), Wire()
    hub = Multiplexer(MemoryTransport(a_to_b, b_to_a))
    agent = Multiplexer(MemoryTransport(b_to_a, a_to_b), on_open=on_open, first_id=2)
    tasks = [asyncio.create_task(hub.run()), asyncio.create_task(agent.run())]
    return hub, agent, b_to_a, tasks  # the wire into the hub, to cut


def test_pour_into_writes_chunks_in_order_and_returns_at_end() -> None:
    async def run() -> None:
        sink = SlowSink()
        sink.drained.set()

        async def serve(stream: Stream) -> None:
            await stream.pour_into(sink)
            await stream.send(b"done")
            await stream.send_end()

        hub, _, _, tasks = await connected(serve)
        stream = await hub.open({"what": "test"})
        for part in (b"a", b"b", b"c"):
            await stream.send(part)
        await stream.send_end()
        assert await stream.recv() == b"done"
        assert await stream.recv() is None
        assert b"".join(sink.got) == b"abc"
        for task in tasks:
            task.cancel()

    asyncio.run(run())


def test_pour_into_grants_credit_only_once_the_sink_drains() -> None:
    async def run() -> None:
        sink = SlowSink()
        poured: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def serve(stream: Stream) -> None:
            try:
                await stream.pour_into(sink)
                poured.set_result(None)
            except StreamClosed as e:
                poured.set_exception(e)

        hub, _, _, tasks = await connected(serve)
        stream = await hub.open({})
        chunk = b"x" * (64 * 1024)
        await stream.send(chunk * (WINDOW // len(chunk)))  # exactly one window
        blocked = asyncio.create_task(stream.send(chunk))
        await asyncio.sleep(0.05)
        assert not blocked.done(), "the sender went past its window while the sink was full"
        assert sum(map(len, sink.got)) == WINDOW
        sink.drained.set()
        await asyncio.wait_for(blocked, timeout=2)
        await stream.send_end()
        await asyncio.wait_for(poured, timeout=2)
        assert sum(map(len, sink.got)) == WINDOW + len(chunk)
        for task in tasks:
            task.cancel()

    asyncio.run(run())


def test_pour_into_fails_when_the_peer_resets_or_the_tunnel_breaks() -> None:
    async def run() -> None:
        sink = SlowSink()
        sink.drained.set()
        outcomes: asyncio.Queue[str] = asyncio.Queue()

        async def serve(stream: Stream) -> None:
            try:
                await stream.pour_into(sink)
                outcomes.put_nowait("ended cleanly")
            except StreamClosed as e:
                outcomes.put_nowait(f"closed: {e}")

        hub, _, back_wire, tasks = await connected(serve)
        stream = await hub.open({})
        await stream.send(b"partial")
        await stream.reset("caller went away")
        assert await asyncio.wait_for(outcomes.get(), timeout=2) == "closed: caller went away"
        assert sink.got == [b"partial"]

        # The hub pours what the agent sends; the wire from the agent breaks mid-stream.
        second = await hub.open({})
        hub_sink = SlowSink()
        hub_sink.drained.set()
        pouring = asyncio.create_task(second.pour_into(hub_sink))
        await asyncio.sleep(0.01)
        await back_wire.inbox.put(None)
        with pytest.raises(StreamClosed, match="tunnel closed"):
            await asyncio.wait_for(pouring, timeout=2)
        assert hub.closed
        tasks[0].cancel()

    asyncio.run(run())


def test_pour_into_reports_a_sink_that_closed() -> None:
    async def run() -> None:
        sink = SlowSink()
        sink.drained.set()
        sink.closed = True
        outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def serve(stream: Stream) -> None:
            with pytest.raises(StreamClosed, match="sink closed"):
                await stream.pour_into(sink)
            outcome.set_result("raised")

        hub, _, _, tasks = await connected(serve)
        stream = await hub.open({})
        await stream.send(b"late bytes")
        assert await asyncio.wait_for(outcome, timeout=2) == "raised"
        for task in tasks:
            task.cancel()

    asyncio.run(run())
