"""Dialing an upgrade request (exec, attach, port-forward) to an apiserver or a replica.

httpx cannot hand over the connection after `101 Switching Protocols`, so this opens
the TLS connection itself: write the request head, read the answer's head; on 101 the
connection is a raw byte pipe (a `SocketEnd`); on any other status the answer's body
is read whole (it is a small Status) so it can be relayed and the connection closed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kubeglobe.kube.http1 import (
    HeadError,
    RequestHead,
    ResponseHead,
    body_length,
    is_chunked,
    parse_response_head,
)
from kubeglobe.kube.pipe import READ_SIZE, SocketEnd
from kubeglobe.kube.rest import RestTarget

CONNECT_SECONDS = 10.0
ANSWER_SECONDS = 30.0
MAX_FINAL_BODY = 1 << 20


class DialError(ConnectionError):
    """The far side could not be reached or did not answer in HTTP; says which and why."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    ssl: ssl.SSLContext
    base_path: str = ""
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def endpoint(url: str, ssl_context: ssl.SSLContext,
             credentials: dict[str, str] | None = None) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise DialError(f"only https:// endpoints carry streams, not {url!r}")
    return Endpoint(host=parts.hostname, port=parts.port or 443, ssl=ssl_context,
                    base_path=parts.path.rstrip("/"), credentials=dict(credentials or {}))


def target_endpoint(target: RestTarget) -> Endpoint:
    """An apiserver as a kubeconfig describes it (CA, client certificate, token)."""
    return endpoint(target.base_url, target.ssl_context, target.headers)


@dataclass
class Answer:
    head: ResponseHead
    body: bytes  # the whole body of a final answer; empty after 101
    pipe: SocketEnd | None  # the upgraded connection after 101


async def connect(where: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to the endpoint (its CA, its client certificate if any)."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(where.host, where.port, ssl=where.ssl,
                                    server_hostname=where.host, limit=READ_SIZE),
            CONNECT_SECONDS)
    except (OSError, TimeoutError) as e:
        raise DialError(f"cannot connect to {where.authority}: {e or type(e).__name__}") from e


async def dial(where: Endpoint, request: RequestHead) -> Answer:
    reader, writer = await connect(where)
    return await _exchange(reader, writer, request, peer=where.authority)


async def dial_unix(path: str, request: RequestHead) -> Answer:
    """`dial`, over a local UNIX socket (plain HTTP: the gateway next door)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(path, limit=READ_SIZE), CONNECT_SECONDS)
    except (OSError, TimeoutError) as e:
        raise DialError(f"cannot connect to {path}: {e or type(e).__name__}") from e
    return await _exchange(reader, writer, request, peer=path)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: RequestHead, *, peer: str) -> Answer:
    try:
        writer.write(request.encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_SECONDS)
        head = parse_response_head(raw)
        if head.upgraded:
            return Answer(head=head, body=b"", pipe=SocketEnd(reader, writer))
        body = await asyncio.wait_for(read_body(reader, head), ANSWER_SECONDS)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            HeadError) as e:
        writer.transport.abort()
        raise DialError(f"{peer} did not answer the upgrade: "
                        f"{e or type(e).__name__}") from e
    writer.close()
    return Answer(head=head, body=body, pipe=None)


async def read_body(reader: asyncio.StreamReader, head: ResponseHead) -> bytes:
    """The body of a final answer: by length, chunked, or until the server closes."""
    if head.status in (204, 304) or 100 <= head.status < 200:
        return b""
    if is_chunked(head):
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # trailers are not kept
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
            if sum(map(len, parts)) > MAX_FINAL_BODY:
                raise HeadError("final answer larger than 1 MiB")
    length = body_length(head)
    if length is not None:
        if length > MAX_FINAL_BODY:
            raise HeadError("final answer larger than 1 MiB")
        return await reader.readexactly(length)
    return await reader.read(MAX_FINAL_BODY)
