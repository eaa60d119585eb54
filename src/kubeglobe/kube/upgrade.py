"""Dialing an upgrade request (exec, attach, port-forward) to an apiserver or the gateway.

httpx cannot hand over the connection after `101 Switching Protocols`, so this speaks
HTTP/1.1 with h11 on its own TLS connection: on 101 it becomes a raw byte pipe; any
other answer is read whole (a small Status) to be relayed.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from kubeglobe.kube.http1 import RequestHead, ResponseHead
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
    tls_name: str | None = None  # the name its certificate must carry, if not `host`

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def target_endpoint(target: RestTarget) -> Endpoint:
    """An apiserver as a kubeconfig describes it (CA, client certificate, token)."""
    parts = urlsplit(target.base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise DialError(f"only https:// endpoints carry streams, not {target.base_url!r}")
    return Endpoint(host=parts.hostname, port=parts.port or 443, ssl=target.ssl_context,
                    base_path=parts.path.rstrip("/"), credentials=dict(target.headers))


@dataclass
class Answer:
    head: ResponseHead
    body: bytes  # the whole body of a final answer; empty after 101
    pipe: SocketEnd | None  # the upgraded connection after 101


async def connect(where: Endpoint, seconds: float = CONNECT_SECONDS, *, limit: int = READ_SIZE,
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to the endpoint (its CA, its client certificate if any)."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(where.host, where.port, ssl=where.ssl,
                                    server_hostname=where.tls_name or where.host, limit=limit),
            seconds)
    except (OSError, TimeoutError) as e:
        raise DialError(f"cannot connect to {where.authority}: {e or type(e).__name__}") from e


async def dial(where: Endpoint, request: RequestHead, *,
               connect_seconds: float = CONNECT_SECONDS) -> Answer:
    reader, writer = await connect(where, connect_seconds)
    return await exchange(reader, writer, request, peer=where.authority)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: RequestHead, *, peer: str) -> Answer:
    http = h11.Connection(h11.CLIENT)
    try:
        # latin-1, as the caller's head was read: h11 would encode str as ASCII only
        sent = h11.Request(method=request.method, target=request.target.encode("latin-1"),
                           headers=[(k.encode("latin-1"), v.encode("latin-1"))
                                    for k, v in request.headers])
        writer.write(http.send(sent) + http.send(h11.EndOfMessage()))
        await writer.drain()
        head = await asyncio.wait_for(_read_head(http, reader), ANSWER_SECONDS)
        if head.upgraded:
            return Answer(head=head, body=b"", pipe=SocketEnd(reader, writer))
        body = await asyncio.wait_for(_read_body(http, reader), ANSWER_SECONDS)
    except h11.LocalProtocolError as e:  # our side: a head h11 will not send
        writer.transport.abort()
        raise DialError(f"the request cannot be sent to {peer}: {e}") from e
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            h11.ProtocolError, UnicodeError) as e:
        writer.transport.abort()
        raise DialError(f"{peer} did not answer the upgrade: "
                        f"{e or type(e).__name__}") from e
    except BaseException:  # cleanup only (cancellation too): never leave the socket open
        writer.transport.abort()
        raise
    writer.close()
    return Answer(head=head, body=body, pipe=None)


async def _read_head(http: h11.Connection, reader: asyncio.StreamReader) -> ResponseHead:
    """The answer's final head (or its 101), read up to its end and no further: what
    follows a 101 is the upgraded protocol's, and stays in `reader`."""
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await reader.readuntil(b"\r\n\r\n"))
            continue
        if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
            continue  # 100 Continue and the like: the answer is still to come
        if isinstance(event, h11.InformationalResponse | h11.Response):
            return ResponseHead(status=event.status_code, reason=event.reason.decode("latin-1"),
                                headers=tuple((k.decode("latin-1"), v.decode("latin-1"))
                                              for k, v in event.headers.raw_items()))
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before the answer")


async def _read_body(http: h11.Connection, reader: asyncio.StreamReader) -> bytes:
    """The body of a final answer, however it is framed (length, chunked, until close)."""
    parts: list[bytes] = []
    size = 0
    while True:
        event = http.next_event()
        if event is h11.NEED_DATA:
            http.receive_data(await reader.read(READ_SIZE))
        elif isinstance(event, h11.Data):
            parts.append(bytes(event.data))
            size += len(event.data)
            if size > MAX_FINAL_BODY:
                raise h11.RemoteProtocolError("final answer larger than 1 MiB")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return b"".join(parts)
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} in the answer")
