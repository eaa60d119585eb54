"""A tunnel stream as one end of a byte pipe (`kube/pipe.py`)."""

from __future__ import annotations

import contextlib

from kubeglobe.kube.pipe import Sink
from kubeglobe.tunnel.mux import Stream


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

    async def pour_into(self, sink: Sink) -> None:
        await self.stream.pour_into(sink)
