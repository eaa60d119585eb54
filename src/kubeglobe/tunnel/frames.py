"""Frames of the tunnel protocol: one WebSocket binary message each.

    | kind: u8 | stream: u32 big-endian | payload |

OPEN (hub to agent) carries the request as JSON; HEAD (agent to hub) the response
status and headers as JSON; DATA carries bytes; END says the sender will send no more
on that stream (a half-close); RESET aborts the stream with a reason; WINDOW grants the
peer more bytes it may send on the stream (flow control). Pure functions only.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

_HEADER = struct.Struct(">BI")

class Kind(enum.IntEnum):
    OPEN = 1
    HEAD = 2
    DATA = 3
    END = 4
    RESET = 5
    WINDOW = 6


class FrameError(ValueError):
    pass


@dataclass(frozen=True)
class Frame:
    kind: Kind
    stream: int
    payload: bytes = b""

    def json(self) -> Any:
        return json.loads(self.payload)

    def credit(self) -> int:
        if len(self.payload) != 4:
            raise FrameError("WINDOW frame needs a 4-byte credit")
        value: int = struct.unpack(">I", self.payload)[0]
        return value


def encode(frame: Frame) -> bytes:
    return _HEADER.pack(frame.kind, frame.stream) + frame.payload


def decode(data: bytes) -> Frame:
    if len(data) < _HEADER.size:
        raise FrameError(f"frame of {len(data)} bytes is shorter than its header")
    kind, stream = _HEADER.unpack_from(data)
    try:
        return Frame(kind=Kind(kind), stream=stream, payload=data[_HEADER.size:])
    except ValueError as e:
        raise FrameError(f"unknown frame kind {kind}") from e


def json_frame(kind: Kind, stream: int, body: Any) -> Frame:
    return Frame(kind=kind, stream=stream, payload=json.dumps(body).encode())


def window_frame(stream: int, credit: int) -> Frame:
    return Frame(kind=Kind.WINDOW, stream=stream, payload=struct.pack(">I", credit))
