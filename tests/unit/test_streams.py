"""Pure parts of the stream path: HTTP/1.1 heads, the SPDY watch, the byte pipe."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import zlib

import pytest

from kubeglobe.kube.http1 import (
    RequestHead,
    ResponseHead,
    StreamRoute,
    apiserver_head,
    final_response,
    status_response,
    stream_route,
    upgrade_token,
)
from kubeglobe.kube.pipe import splice
from kubeglobe.kube.spdy import DICTIONARY, SpdyWatch, data_frame
from kubeglobe.kube.status import reason, status_json
from kubeglobe.kube.upgrade import Answer, DialError, exchange
from kubeglobe.server.streams import WatchedCaller

SPDY = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]


def test_stream_routes_only_non_websocket_upgrades_to_the_cluster_proxy() -> None:
    target = "/clusters/w1/k8s/api/v1/namespaces/a/pods/b/exec?command=ls&stdout=true"
    assert stream_route(target, SPDY) == StreamRoute(
        cluster="w1", target="/api/v1/namespaces/a/pods/b/exec?command=ls&stdout=true")
    assert stream_route(target, []) is None  # a plain request stays with the ASGI app
    assert stream_route(target, [("Connection", "Upgrade"), ("Upgrade", "websocket")]) is None
    assert stream_route("/api/v1/agent/tunnel", SPDY) is None
    assert stream_route("/clusters/w1/k8s", SPDY) == StreamRoute(cluster="w1", target="/")
    escaped = "/clusters/w1/k8s/api/v1/namespaces/a/pods/b/exec?command=sh&command=-c&command=a%20b"
    route = stream_route(escaped, SPDY)
    assert route is not None and route.target.endswith("command=a%20b")


def test_upgrade_token_needs_connection_upgrade() -> None:
    assert upgrade_token([("connection", "keep-alive, Upgrade"), ("upgrade", "SPDY/3.1")]) == (
        "spdy/3.1")
    assert upgrade_token([("upgrade", "SPDY/3.1")]) is None


def test_apiserver_head_restores_the_upgrade_and_adds_the_dialers_credentials() -> None:
    head = apiserver_head(method="POST", target="/api/v1/x/exec?command=id", base_path="/pre",
                          host="10.0.0.1:6443", upgrade="SPDY/3.1",
                          forwarded=[("Host", "hub"), ("X-Stream-Protocol-Version",
                                                        "v4.channel.k8s.io"),
                                     ("Impersonate-User", "bob")],
                          credentials={"Authorization": "Bearer agent"})
    assert (head.method, head.target) == ("POST", "/pre/api/v1/x/exec?command=id")
    assert head.headers[0] == ("Host", "10.0.0.1:6443")
    for pair in (("X-Stream-Protocol-Version", "v4.channel.k8s.io"), ("Impersonate-User", "bob"),
                 ("Authorization", "Bearer agent"), ("Connection", "Upgrade"),
                 ("Upgrade", "SPDY/3.1")):
        assert pair in head.headers
    assert ("Host", "hub") not in head.headers


async def _dialled(answer: bytes, *, then_close: bool = False,
                   ) -> tuple[Answer | DialError, bytes]:
    """`exchange` against a peer that answers `answer` (an in-process socket pair): what
    it returned, and what the peer received."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
    peer_writer.write(answer)
    if then_close:
        peer_writer.write_eof()
    await peer_writer.drain()
    head = RequestHead(method="POST", target="/api/v1/x/exec?command=id",
                       headers=(("Host", "a:1"), ("Connection", "Upgrade"),
                                ("Upgrade", "SPDY/3.1")))
    try:
        got: Answer | DialError = await exchange(reader, writer, head, peer="a:1")
    except DialError as e:
        got = e
    sent = await peer_reader.readuntil(b"\r\n\r\n")
    peer_writer.close()
    return got, sent


def test_an_upgrade_is_dialled_and_the_bytes_after_the_101_stay_in_the_pipe() -> None:
    async def scenario() -> None:
        got, sent = await _dialled(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade"
                                   b"\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                                   b"\r\n\x80\x03spdy")
        assert sent.startswith(b"POST /api/v1/x/exec?command=id HTTP/1.1\r\n")
        assert b"\r\nUpgrade: SPDY/3.1\r\n" in sent
        assert isinstance(got, Answer) and got.pipe is not None
        assert got.head.upgraded and got.head.reason == "Switching Protocols"
        assert got.head.header("x-stream-protocol-version") == "v4.channel.k8s.io"
        assert await got.pipe.read() == b"\x80\x03spdy"  # the upgraded protocol's first bytes
        await got.pipe.close(None)

    asyncio.run(scenario())


@pytest.mark.parametrize("framing", [
    b"Content-Length: 7\r\n\r\n{\"x\":1}",
    b"Transfer-Encoding: chunked\r\n\r\n3\r\n{\"x\r\n4\r\n\":1}\r\n0\r\n\r\n",
])
def test_a_final_answer_is_read_whole_however_it_is_framed(framing: bytes) -> None:
    got, _ = asyncio.run(_dialled(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json"
                                  b"\r\n" + framing))
    assert isinstance(got, Answer) and got.pipe is None
    assert (got.head.status, got.body) == (403, b'{"x":1}')


def test_an_answer_until_close_and_an_informational_one_are_read_whole() -> None:
    got, _ = asyncio.run(_dialled(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403 Forbidden\r\n"
                                  b"\r\nno", then_close=True))
    assert isinstance(got, Answer) and (got.head.status, got.body) == (403, b"no")


def test_header_values_go_out_as_latin_1_as_they_came_in() -> None:
    async def scenario() -> bytes:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        peer_reader, peer_writer = await asyncio.open_connection(sock=theirs)
        peer_writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n")
        head = RequestHead(method="GET", target="/x", headers=(
            ("Host", "a:1"), ("Impersonate-User", "Jos\xe9"), ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1")))
        got = await exchange(reader, writer, head, peer="a:1")
        sent = await peer_reader.readuntil(b"\r\n\r\n")
        assert got.pipe is not None
        await got.pipe.close(None)
        peer_writer.close()
        return sent

    assert b"\r\nImpersonate-User: Jos\xe9\r\n" in asyncio.run(scenario())


def test_a_peer_that_does_not_speak_http_is_a_dial_error() -> None:
    got, _ = asyncio.run(_dialled(b"SSH-2.0-OpenSSH\r\n\r\n"))
    assert isinstance(got, DialError) and "did not answer the upgrade" in str(got)


def test_final_answers_are_relayed_whole_and_close() -> None:
    head = ResponseHead(status=403, reason="Forbidden", headers=(
        ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive")))
    raw = final_response(head, b'{"x":1}')
    top, _, body = raw.partition(b"\r\n\r\n")
    assert top.startswith(b"HTTP/1.1 403 Forbidden\r\n") and body == b'{"x":1}'
    lines = top.split(b"\r\n")[1:]
    assert b"Content-Length: 7" in lines and b"Connection: close" in lines
    assert not [line for line in lines if line.lower().startswith(b"transfer-encoding")]


def test_statuses_carry_the_reasons_kubernetes_gives_their_codes() -> None:
    assert [reason(c) for c in (401, 404, 409, 422, 502, 503, 504, 599)] == [
        "Unauthorized", "NotFound", "Conflict", "Invalid", "InternalError",
        "ServiceUnavailable", "Timeout", "InternalError"]  # Kubernetes has no BadGateway
    assert reason(302) == ""
    assert json.loads(status_json(502, "m")) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "m", "reason": "InternalError", "code": 502}


def test_refusals_are_kubernetes_statuses() -> None:
    top, _, body = status_response(503, "the agent of cluster w2 is not connected").partition(
        b"\r\n\r\n")
    assert top.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    status = json.loads(body)
    assert status["kind"] == "Status" and status["code"] == 503
    assert status["reason"] == "ServiceUnavailable" and "w2" in status["message"]


# -- SPDY ------------------------------------------------------------------------------

def test_the_spdy_dictionary_is_the_one_zlib_expects() -> None:
    # SPDY/3's dictionary, as its Adler-32 (what a zlib stream names it by).
    assert len(DICTIONARY) == 1423 and zlib.adler32(DICTIONARY) == 3821447106


def _syn_stream(compress: zlib._Compress, stream: int, headers: dict[str, str]) -> bytes:
    block = struct.pack(">I", len(headers)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
        for k, v in headers.items())
    packed = compress.compress(block) + compress.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIH", stream, 0, 0) + packed
    return struct.pack(">HHI", 0x8003, 1, len(payload)) + payload


def test_the_watch_finds_the_error_stream_and_tells_it_why() -> None:
    client = zlib.compressobj(zdict=DICTIONARY)
    watch = SpdyWatch(protocol="v4.channel.k8s.io")
    frames = (_syn_stream(client, 1, {"streamtype": "error"})
              + _syn_stream(client, 3, {"streamtype": "stdout"}))
    for i in range(0, len(frames), 7):  # any split of the bytes
        watch.from_client(frames[i:i + 7])
    assert watch.error_streams == {1}
    out = data_frame(3, b"hello")
    watch.from_server(out[:4])
    assert watch.broken("lost") == b""  # mid-frame: nothing may be inserted
    watch.from_server(out[4:])
    told = watch.broken("lost the agent")
    stream, flags_length = struct.unpack_from(">II", told)
    assert stream == 1 and flags_length >> 24 == 1  # FIN
    status = json.loads(told[8:])
    assert status["status"] == "Failure" and status["message"] == "lost the agent"


def test_the_watch_stays_quiet_once_the_server_closed_the_error_stream() -> None:
    client = zlib.compressobj(zdict=DICTIONARY)
    watch = SpdyWatch(protocol="v4.channel.k8s.io")
    watch.from_client(_syn_stream(client, 5, {"streamtype": "error"}))
    watch.from_server(data_frame(5, b"{}", fin=True))
    assert watch.broken("x") == b""


def test_the_watch_gives_up_on_what_is_not_spdy() -> None:
    watch = SpdyWatch()
    watch.from_client(b"\x80\x03\x00\x01\x00\x00\x00\x0e" + b"\x00" * 10 + b"junk")
    assert watch.failed and watch.broken("x") == b""


# -- the pipe ----------------------------------------------------------------------------

class MemoryEnd:
    """An end fed from a list of chunks; records what it is sent."""

    def __init__(self, chunks: list[bytes], *, can_end: bool = True,
                 fail: Exception | None = None) -> None:
        self.chunks = list(chunks)
        self.sent: list[bytes] = []
        self.ended = False
        self.closed: tuple[bool, str | None] = (False, None)
        self._can_end = can_end
        self._fail = fail
        self.hold = asyncio.Event()

    async def read(self) -> bytes | None:
        if self.chunks:
            return self.chunks.pop(0)
        if self._fail is not None:
            raise self._fail
        await self.hold.wait()
        return None

    async def write(self, data: bytes) -> None:
        self.sent.append(data)

    async def end(self) -> bool:
        self.ended = self._can_end
        return self._can_end

    async def close(self, error: str | None) -> None:
        self.closed = (True, error)


def test_splice_half_closes_where_it_can() -> None:
    async def run() -> None:
        a = MemoryEnd([b"1", b"2"])
        b = MemoryEnd([b"x"])
        a.hold.set()
        b.hold.set()
        assert await splice(a, b) is None
        assert b.sent == [b"1", b"2"] and a.sent == [b"x"] and a.ended and b.ended
        assert a.closed == (True, None) and b.closed == (True, None)

    asyncio.run(run())


def test_splice_ends_everything_when_one_side_cannot_half_close() -> None:
    async def run() -> None:
        socket_like = MemoryEnd([b"req"], can_end=False)
        tunnel = MemoryEnd([b"answer"])
        tunnel.hold.set()  # the tunnel ends; the socket never does by itself
        assert await splice(socket_like, tunnel) is None
        assert socket_like.sent == [b"answer"] and socket_like.closed == (True, None)

    asyncio.run(run())


def test_splice_passes_a_failure_to_both_ends() -> None:
    async def run() -> None:
        caller = MemoryEnd([])
        tunnel = MemoryEnd([b"partial"], fail=ConnectionError("tunnel closed"))
        error = await splice(caller, tunnel)
        assert error == "ConnectionError: tunnel closed"
        assert caller.sent == [b"partial"] and caller.closed == (True, error)
        assert tunnel.closed == (True, error)

    asyncio.run(run())


def test_a_far_side_that_just_closes_mid_command_fails_it_before_the_caller_sees_eof() -> None:
    """HAProxy closes politely when an agent's connection is gone: the command's error
    stream is still open, so kubectl is told why before its connection half-closes;
    a command that finished (error stream closed) ends without a word."""
    async def run(far_chunks: list[bytes]) -> MemoryEnd:
        client = zlib.compressobj(zdict=DICTIONARY)
        caller = MemoryEnd([_syn_stream(client, 1, {"streamtype": "error"})])
        watched = WatchedCaller(caller, SpdyWatch(protocol="v4.channel.k8s.io"),
                                lost="lost the stream to cluster w2 through its agent")
        far = MemoryEnd(far_chunks)
        far.hold.set()
        caller.hold.set()
        assert await splice(watched, far) is None
        return caller

    cut = asyncio.run(run([data_frame(3, b"alive\n")]))
    assert cut.ended and len(cut.sent) == 2  # the output, then the error stream's Status
    stream, flags_length = struct.unpack_from(">II", cut.sent[1])
    assert stream == 1 and flags_length >> 24 == 1
    assert json.loads(cut.sent[1][8:])["message"] == (
        "lost the stream to cluster w2 through its agent (closed mid-stream)")
    done = asyncio.run(run([data_frame(3, b"bye\n"), data_frame(1, b"", fin=True)]))
    assert done.ended and len(done.sent) == 2  # the output and the server's own FIN only
