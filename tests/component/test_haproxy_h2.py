"""Our HAProxy's HTTP/2 flow control (local/haproxy_patches/h2-coalesce-window-updates.patch).

The built HAProxy runs on loopback with an HTTP/2 frontend in front of a plain TCP sink;
a client speaking HTTP/2 (the `h2` library over a socket) sends a request body and
records every WINDOW_UPDATE HAProxy sends back. Stock HAProxy 3.0 answers each DATA
frame with two; ours waits until 64 KiB of the stream's window are used, and must still
let a body many windows long through without stalling.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from kubeglobe.local.health import probe_tcp, wait_until
from tests.component.conftest import free_port

WINDOW = 1 << 20  # the stream window HAProxy advertises, as the gateway's and agents' do
COALESCED = 65536  # what our HAProxy acknowledges at once, at most



class Sink:
    """A TCP server that reads and counts whatever HAProxy forwards, until it closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.received = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(30)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    return
                self.received += len(data)

    def close(self) -> None:
        self.listener.close()
        self._thread.join(timeout=35)


@pytest.fixture
def haproxy(tmp_path: Path, haproxy_bin: Path) -> Iterator[tuple[int, Sink]]:
    """HAProxy with an HTTP/2 frontend forwarding to a sink: the frontend's port, the sink."""
    sink = Sink()
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    tune.h2.initial-window-size {WINDOW}

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend h2
    bind 127.0.0.1:{port} proto h2
    default_backend sink

backend sink
    server sink 127.0.0.1:{sink.port}
""")
    log = tmp_path / "haproxy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(haproxy_bin), "-db", "-f", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until("HAProxy", partial(probe_tcp, "127.0.0.1", port), timeout=10,
                   alive=lambda: proc.poll() is None, log=str(log), interval=0.05)
        yield port, sink
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sink.close()


@dataclass
class Client:
    """An HTTP/2 client over a blocking socket, recording HAProxy's WINDOW_UPDATEs."""

    sock: socket.socket
    conn: h2.connection.H2Connection = field(default_factory=lambda: h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")))
    updates: list[tuple[int, int]] = field(default_factory=list)  # (stream, increment)

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def read_for(self, seconds: float) -> None:
        """Take in what HAProxy sends during `seconds` (bounded)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                return
            assert data, "HAProxy closed the connection"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.WindowUpdated):
                    self.updates.append((event.stream_id, event.delta))
                assert not isinstance(event, h2.events.StreamReset), event
            self.flush()

    def send_body(self, stream: int, total: int, frame: int) -> None:
        """Send `total` bytes in frames of `frame`, waiting for window when it runs out."""
        sent = 0
        while sent < total:
            deadline = time.monotonic() + 10
            while self.conn.local_flow_control_window(stream) < frame:
                assert time.monotonic() < deadline, (
                    f"HAProxy granted no window for 10 s after {sent} bytes: the stream stalled")
                self.read_for(0.05)
            self.conn.send_data(stream, b"x" * frame)
            self.flush()
            sent += frame


def test_small_data_frames_are_not_acknowledged_one_by_one_and_a_long_body_still_flows(
    haproxy: tuple[int, Sink],
) -> None:
    port, sink = haproxy
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        client = Client(sock)
        client.conn.initiate_connection()
        client.flush()
        client.read_for(0.2)  # HAProxy's SETTINGS
        stream = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream, [(":method", "POST"), (":path", "/upload"),
                                          (":scheme", "http"), (":authority", "sink")])
        client.flush()

        for _ in range(50):  # 50 lines of an interactive stream: 2,500 bytes
            client.conn.send_data(stream, b"y" * 50)
            client.flush()
            client.read_for(0.01)
        client.read_for(0.5)
        on_stream = [inc for sid, inc in client.updates if sid == stream]
        on_connection = [inc for sid, inc in client.updates if sid == 0]
        assert on_stream == []  # stock HAProxy: 50 of them
        assert len(on_connection) == 1  # the one that opens the connection's window
        assert on_connection[0] > 1 << 30

        client.updates.clear()
        client.send_body(stream, 4 * WINDOW, 8192)  # four windows: only granted updates help
        client.read_for(0.5)
        on_stream = [inc for sid, inc in client.updates if sid == stream]
        assert sum(on_stream) >= 3 * WINDOW
        assert all(inc >= COALESCED for inc in on_stream), on_stream
        # every 64 KiB: a sender never runs short (stock HAProxy: one per frame, 512)
        assert 3 * WINDOW // COALESCED <= len(on_stream) <= 4 * WINDOW // COALESCED + 1
        assert [sid for sid, _ in client.updates if sid == 0] == []
        deadline = time.monotonic() + 10  # and the body reached the server behind
        while sink.received < 4 * WINDOW + 2500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.received >= 4 * WINDOW + 2500
