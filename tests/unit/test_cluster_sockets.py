"""A replica's per-cluster socket: HAProxy's connections become `connect` streams.

The real socket code and multiplexer, with the tunnel's WebSocket replaced by the
in-memory transport of the multiplexer's own tests; the "agent" echoes what it gets.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from kubeglobe.server.cluster_sockets import CONNECT_META, ClusterSockets
from kubeglobe.tunnel.mux import Stream
from tests.unit.test_tunnel_mux import connected


def test_connections_become_streams_and_checks_open_none() -> None:
    opened: list[dict[str, str]] = []

    async def echo(stream: Stream) -> None:  # the agent's side: answer each chunk
        opened.append(stream.meta)
        while (chunk := await stream.recv()) is not None:
            await stream.send(b"echo:" + chunk)
        await stream.send_end()

    async def scenario(directory: Path) -> None:
        hub, _, _, tasks = await connected(echo)
        sockets = ClusterSockets(directory / "server-0.d")
        sockets.prepare()
        await sockets.open("w", hub)
        path = directory / "server-0.d" / "w.sock"
        assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"

        # HAProxy's check: connect, send nothing, close. No stream is opened.
        _, writer = await asyncio.open_unix_connection(str(path))
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert opened == []

        # A request, then another on the same connection: one stream carries both.
        reader, writer = await asyncio.open_unix_connection(str(path))
        for request in (b"GET /a", b"GET /b"):
            writer.write(request)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b"echo:" + request
        assert opened == [CONNECT_META]
        writer.close()

        # The tunnel goes: the socket goes with it (HAProxy's check then fails).
        await sockets.close("w")
        assert not path.exists()
        await sockets.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # UNIX socket paths stay short
        asyncio.run(scenario(Path(short)))
