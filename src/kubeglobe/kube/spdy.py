"""Just enough SPDY/3.1 to tell kubectl *why* its stream broke (pure).

When the far side of a relayed exec/attach breaks mid-stream, closing the caller's
connection alone makes kubectl (v1.20) exit 0 as if the command had finished; a failed
`Status` written on its `streamtype: error` stream makes it print our message and fail.
`SpdyWatch` follows both directions' frames without changing a byte to learn those
streams' ids, and whether the server's byte stream is at a frame boundary.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from kubeglobe.kube.status import status_json

_WORDS = (
    "options|head|post|put|delete|trace|accept|accept-charset|accept-encoding|"
    "accept-language|accept-ranges|age|allow|authorization|cache-control|connection|"
    "content-base|content-encoding|content-language|content-length|content-location|"
    "content-md5|content-range|content-type|date|etag|expect|expires|from|host|if-match|"
    "if-modified-since|if-none-match|if-range|if-unmodified-since|last-modified|location|"
    "max-forwards|pragma|proxy-authenticate|proxy-authorization|range|referer|retry-after|"
    "server|te|trailer|transfer-encoding|upgrade|user-agent|vary|via|warning|"
    "www-authenticate|method|get|status|200 OK|version|HTTP/1.1|url|public|set-cookie|"
    "keep-alive|origin"
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
    "504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The header-compression dictionary of SPDY/3 (draft 3, section 2.6.10.1).
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode()
                     for w in _WORDS.split("|")) + _TAIL.encode()

_SYN_STREAM, _SYN_REPLY, _HEADERS = 1, 2, 8
_FLAG_FIN = 0x01
MAX_CONTROL = 1 << 20  # a header block larger than this is not kubectl's: stop watching


class _Frames:
    """Splits one direction's bytes into frames: data frames are only counted through,
    control frames are kept whole."""

    def __init__(self) -> None:
        self._head = b""
        self._left = 0  # payload bytes of the current frame still to come
        self._control: bytearray | None = None
        self._frame: tuple[bool, int, int] = (False, 0, 0)  # control?, type|stream, flags

    @property
    def at_boundary(self) -> bool:
        return not self._head and self._left == 0

    def feed(self, data: bytes) -> list[tuple[bool, int, int, bytes]]:
        """Frames completed by `data`: (control?, type or stream id, flags, payload);
        data frames' payloads are not kept (b"")."""
        done: list[tuple[bool, int, int, bytes]] = []
        view = memoryview(data)
        while view:
            if self._left == 0 and len(self._head) < 8:
                take = 8 - len(self._head)
                self._head += bytes(view[:take])
                view = view[take:]
                if len(self._head) < 8:
                    break
                first, flags_length = struct.unpack(">II", self._head)
                control = bool(first & 0x80000000)
                kind = first & 0xFFFF if control else first & 0x7FFFFFFF
                self._frame = (control, kind, flags_length >> 24)
                self._left = flags_length & 0xFFFFFF
                if control and self._left > MAX_CONTROL:
                    raise ValueError("control frame too large")
                self._control = bytearray() if control else None
                if self._left == 0:
                    done.append((*self._frame, b""))
                    self._head = b""
                continue
            take = min(self._left, len(view))
            if self._control is not None:
                self._control += view[:take]
            self._left -= take
            view = view[take:]
            if self._left == 0:
                payload = bytes(self._control) if self._control is not None else b""
                done.append((*self._frame, payload))
                self._head, self._control = b"", None
        return done


def _headers(block: bytes) -> dict[str, str]:
    (count,) = struct.unpack_from(">I", block)
    at, found = 4, {}
    for _ in range(count):
        (n,) = struct.unpack_from(">I", block, at)
        name = block[at + 4:at + 4 + n].decode("latin-1")
        at += 4 + n
        (n,) = struct.unpack_from(">I", block, at)
        found[name.lower()] = block[at + 4:at + 4 + n].decode("latin-1")
        at += 4 + n
    return found


@dataclass
class SpdyWatch:
    """Follows a kubectl SPDY/3.1 connection; `broken` says what to send on failure."""

    protocol: str = ""  # X-Stream-Protocol-Version of the 101 answer
    error_streams: set[int] = field(default_factory=set)
    failed: bool = False  # something was not SPDY as expected: give up watching
    _client: _Frames = field(default_factory=_Frames)
    _server: _Frames = field(default_factory=_Frames)
    _inflate: zlib._Decompress = field(
        default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def from_client(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            for control, kind, _flags, payload in self._client.feed(data):
                if control and kind in (_SYN_STREAM, _HEADERS):
                    skip = 10 if kind == _SYN_STREAM else 4  # ids (and priority) first
                    (stream,) = struct.unpack_from(">I", payload)
                    headers = _headers(self._inflate.decompress(payload[skip:]))
                    if headers.get("streamtype") == "error":
                        self.error_streams.add(stream & 0x7FFFFFFF)
        except (ValueError, struct.error, zlib.error):
            self.failed = True

    def from_server(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            for control, kind, flags, payload in self._server.feed(data):
                if not control and flags & _FLAG_FIN:
                    self.error_streams.discard(kind)
                elif control and kind == _SYN_REPLY and flags & _FLAG_FIN:
                    self.error_streams.discard(struct.unpack_from(">I", payload)[0])
        except (ValueError, struct.error):
            self.failed = True

    def broken(self, message: str) -> bytes:
        """Frames telling the client its command failed with `message` (empty if that
        cannot be said safely: not at a frame boundary, or no error stream open)."""
        if self.failed or not self._server.at_boundary:
            return b""
        v4 = self.protocol.startswith("v4.")  # v4 clients read a Status, older plain text
        body = status_json(503, message) if v4 else message.encode()
        return b"".join(data_frame(stream, body, fin=True)
                        for stream in sorted(self.error_streams))


def data_frame(stream: int, payload: bytes, *, fin: bool = False) -> bytes:
    return struct.pack(">II", stream & 0x7FFFFFFF,
                       ((_FLAG_FIN if fin else 0) << 24) | len(payload)) + payload
