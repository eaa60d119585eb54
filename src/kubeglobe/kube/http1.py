"""HTTP/1.1 heads for connection upgrades (exec, attach, port-forward): pure functions.

The proxy relays the upgrade request and its `101 Switching Protocols` itself, then
the connection is raw bytes. Nothing here may drop the upgrade headers of a request it
forwards: without them the apiserver answers 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.client import responses
from urllib.parse import unquote

from kubeglobe.kube.status import status_json

_ROUTE = re.compile(r"^/clusters/(?P<name>[^/]+)/k8s(?P<path>/.*)?$")
# Hop-by-hop headers of a relayed final (non-101) answer; we send our own length and close.
_DROP_FINAL = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade",
               "trailer"}


@dataclass(frozen=True)
class StreamRoute:
    """Where a stream request to the platform goes: cluster and the apiserver target."""

    cluster: str
    target: str  # path and query on the cluster's apiserver, e.g. /api/v1/...?command=ls


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    @property
    def upgraded(self) -> bool:
        return self.status == 101

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def encode(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}".rstrip()]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def upgrade_token(headers: list[tuple[str, str]]) -> str | None:
    """The protocol a request asks to upgrade to (lower case), if it asks at all."""
    connection = ",".join(v for k, v in headers if k.lower() == "connection")
    if "upgrade" not in {t.strip().lower() for t in connection.split(",")}:
        return None
    upgrade = next((v for k, v in headers if k.lower() == "upgrade"), None)
    return upgrade.strip().lower() if upgrade else None


def stream_route(target: str, headers: list[tuple[str, str]]) -> StreamRoute | None:
    """A non-WebSocket upgrade request to the cluster proxy, or None for anything else
    (plain requests and WebSockets stay with the ASGI app)."""
    token = upgrade_token(headers)
    if token is None or token == "websocket":
        return None
    path, sep, query = target.partition("?")
    match = _ROUTE.match(unquote(path))
    if match is None:
        return None
    raw = _ROUTE.match(path)  # keep the caller's own escaping in what we forward
    rest = (raw.group("path") if raw else None) or "/"
    return StreamRoute(cluster=match.group("name"), target=rest + (sep + query if sep else ""))


def apiserver_head(*, method: str, target: str, base_path: str, host: str,
                   upgrade: str, forwarded: list[tuple[str, str]],
                   credentials: dict[str, str]) -> RequestHead:
    """The upgrade request as sent to an apiserver: the caller's headers already filtered
    (impersonation added), the upgrade pair restored, and the dialer's own credentials."""
    headers = [("Host", host), *[(k, v) for k, v in forwarded if k.lower() != "host"],
               *credentials.items(), ("Connection", "Upgrade"), ("Upgrade", upgrade)]
    return RequestHead(method=method, target=base_path.rstrip("/") + target,
                       headers=tuple(headers))


def final_response(head: ResponseHead, body: bytes) -> bytes:
    """A relayed final (non-101) answer, whole, on a connection that closes after it."""
    headers = [(k, v) for k, v in head.headers if k.lower() not in _DROP_FINAL]
    headers += [("Content-Length", str(len(body))), ("Connection", "close")]
    return ResponseHead(status=head.status, reason=head.reason,
                        headers=tuple(headers)).encode() + body


def status_response(code: int, message: str) -> bytes:
    """A Kubernetes `Status` answer, so kubectl prints our message (connection closes)."""
    body = status_json(code, message)
    head = ResponseHead(status=code, reason=responses.get(code, ""),
                        headers=(("Content-Type", "application/json"),))
    return final_response(head, body)
