"""The agent's HTTP/1.1 client against a real TLS server on loopback: keep-alive reuse,
streamed bodies both ways, and a kept connection the server has closed meanwhile."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import h11

from kubeglobe.agent.apiserver_http import ApiserverHttp
from kubeglobe.certfiles import CertPair, ensure_ca, ensure_cert
from kubeglobe.kube.upgrade import Endpoint


class Server:
    """Answers each request with its method, path and body length; chunked when asked.
    Counts connections; can close every idle connection."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, size = None, 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await reader.read(65536)
                        if not data:
                            return
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        break
                assert request is not None
                body = f"{request.method.decode()} {request.target.decode()} {size}".encode()
                chunked = request.target.endswith(b"chunked")
                headers = [("Transfer-Encoding", "chunked")] if chunked else [
                    ("Content-Length", str(len(body)))]
                writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                for part in ([body[:3], body[3:]] if chunked else [body]):
                    writer.write(conn.send(h11.Data(data=part)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                conn.start_next_cycle()
        finally:
            writer.close()

    def close_all(self) -> None:
        for writer in self.writers:
            writer.close()


def tls(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = ensure_ca(pair=CertPair(cert=tmp / "ca.crt", key=tmp / "ca.key"), common_name="t")
    leaf = ensure_cert(issuer=ca, pair=CertPair(cert=tmp / "s.crt", key=tmp / "s.key"),
                       common_name="s", ip_addresses=("127.0.0.1",), server=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(leaf.cert), str(leaf.key))
    return server, ssl.create_default_context(cafile=str(tmp / "ca.crt"))


async def _body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_requests_reuse_connections_stream_bodies_and_survive_a_closed_idle_one(
        tmp_path: Path) -> None:
    async def run() -> None:
        server_ctx, client_ctx = tls(tmp_path)
        server = Server(server_ctx)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=server_ctx)
        port = listener.sockets[0].getsockname()[1]
        http = ApiserverHttp(Endpoint(host="127.0.0.1", port=port, ssl=client_ctx,
                                      base_path="/base",
                                      credentials={"Authorization": "Bearer t"}))

        async def call(method: str, target: str, body: AsyncIterator[bytes] | None) -> str:
            reply = await http.request(method, target, [("Accept", "*/*")], body)
            try:
                return b"".join([c async for c in reply.chunks()]).decode()
            finally:
                reply.release()

        try:
            assert await call("GET", "/api?x=1", None) == "GET /base/api?x=1 0"
            assert await call("POST", "/chunked", _body(b"abc", b"de")) == "POST /base/chunked 5"
            assert server.connections == 1  # kept alive and reused
            server.close_all()  # the server drops the idle connection
            await asyncio.sleep(0.1)
            assert await call("GET", "/again", None) == "GET /base/again 0"
            assert server.connections == 2
            reply = await http.request("GET", "/chunked", [], None)
            reply.release()  # abandoned before its body: the connection is not kept
            assert await call("GET", "/after", None) == "GET /base/after 0"
            assert server.connections == 3
        finally:
            await http.aclose()
            listener.close()
            await listener.wait_closed()

    asyncio.run(run())
