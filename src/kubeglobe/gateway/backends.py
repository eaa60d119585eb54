"""The gateway's HAProxy backends: imported clusters and registered ones (pure).

One backend per imported cluster whose kubeconfig HAProxy can use as it is: the
apiserver's address, its CA (HAProxy verifies the chain, and the host name when the
server is named rather than numbered), the client certificate or bearer token. A
cluster it cannot use (no CA, insecure TLS, an IPv6 literal, a token with odd
characters, ...) gets no backend: its requests take the API servers' slow path, which
handles every kubeconfig. The backend impersonates the caller the frontend identified
(`frontend.impersonation_rules`), adds the cluster's own credential and strips the
`/clusters/NAME/k8s` prefix.

A registered cluster's backend (`TunnelBackend`) has one server per API server replica:
the replica's socket for that cluster (`sockets.py`), open while the replica holds the
cluster's tunnel with raw connections on offer; HAProxy's one-second checks mark the
others down. The agent's client certificate authenticates those connections, so the
backend adds no credential. While no replica serves the socket (the agent away, or an
agent without raw connections), the rules leave the request as it came and the
replicas' platform sockets (backup servers) serve it the per-request way, whose answers
say what is wrong. Connection upgrades (exec, attach, port-forward) of a registered
cluster never come here: the frontend leaves them to the servers.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kubeglobe.gateway.frontend import TUNNEL_PREFIX, impersonation_rules
from kubeglobe.kube.rest import Credentials

_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]+$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


class Unservable(ValueError):
    """The gateway cannot use this kubeconfig itself; the message says why."""


@dataclass(frozen=True)
class ClusterBackend:
    cluster: str
    host: str
    port: int
    prefix: str  # the server URL's path, if any
    ca: bytes
    client_pem: bytes | None  # certificate then key
    token: str | None

    @property
    def name(self) -> str:
        return backend_name(self.cluster)


@dataclass(frozen=True)
class TunnelBackend:
    cluster: str
    servers: dict[int, tuple[Path, Path]]  # replica -> (cluster socket, platform socket)

    @property
    def name(self) -> str:
        return f"{TUNNEL_PREFIX}{self.cluster}"


@dataclass(frozen=True)
class Rendered:
    config: str
    files: dict[Path, bytes]
    clusters: dict[str, str]  # cluster -> backend, the frontend's map
    reverse: frozenset[str] = frozenset()  # reverse backends, switched to at runtime


_REASONS = {502: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_errors(messages: dict[int, str]) -> list[str]:
    """Backend lines answering HAProxy's own 502/503/504 as Kubernetes `Status` objects
    (kubectl prints their message) instead of HAProxy's HTML pages. The messages hold
    cluster names (DNS labels) and plain words only: no quote to escape."""
    lines = []
    for code, message in sorted(messages.items()):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message,
                           "reason": _REASONS[code], "code": code}, separators=(",", ":"))
        assert "'" not in body, "HAProxy's single-quoted strings cannot hold a quote"
        lines.append(f"    http-error status {code} content-type application/json "
                     f"string '{body}'")
    return lines


def backend_name(cluster: str) -> str:
    return f"kg-cluster-{cluster}"


def cluster_backend(cluster: str, found: Credentials) -> ClusterBackend:
    """The backend for `cluster`, or Unservable with the reason."""
    url = urlsplit(found.server)
    if url.scheme != "https" or not url.hostname:
        raise Unservable(f"server {found.server!r} is not an https URL")
    if found.insecure or found.ca is None:
        raise Unservable("the kubeconfig names no CA to verify the apiserver with")
    if not is_host_name(url.hostname) and ipaddress.ip_address(url.hostname).version == 6:
        raise Unservable("IPv6 server addresses are served by the API servers")
    if not _PREFIX.match(url.path.rstrip("/")):
        raise Unservable(f"server path {url.path!r} has characters the gateway does not pass")
    if found.token is not None and not _TOKEN.match(found.token):
        raise Unservable("the kubeconfig's token has characters the gateway does not pass")
    client_pem = None
    if found.cert is not None and found.key is not None:
        client_pem = found.cert.rstrip(b"\n") + b"\n" + found.key
    if client_pem is None and found.token is None:
        raise Unservable("the kubeconfig has neither a client certificate nor a token")
    return ClusterBackend(cluster=cluster, host=url.hostname, port=url.port or 443,
                          prefix=url.path.rstrip("/"), ca=found.ca, client_pem=client_pem,
                          token=found.token)


def is_host_name(host: str) -> bool:
    """True for a DNS name, False for an IP address literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def tunnel_backend(cluster: str, replicas: dict[int, tuple[Path | None, Path]]) -> TunnelBackend:
    """The backend for registered `cluster`, or Unservable with the reason."""
    servers = {i: (own, platform) for i, (own, platform) in replicas.items() if own is not None}
    if not replicas:
        raise Unservable("no API server replica has a directory for per-cluster sockets")
    if len(servers) < len(replicas):
        raise Unservable("its socket path is too long for a UNIX socket")
    return TunnelBackend(cluster=cluster, servers=servers)


def _render_tunnel(b: TunnelBackend) -> str:
    lines = [f"backend {b.name}", "    mode http", "    http-reuse aggressive",
             "    option redispatch", "    retries 2"]
    lines += status_errors({
        502: f"cluster {b.cluster} did not answer through its agent: the agent could not "
             "reach its apiserver, or the tunnel broke during the request",
        503: f"the agent of cluster {b.cluster} lost its tunnel to this replica just now; "
             "retry",
        504: f"cluster {b.cluster} did not answer through its agent in time"})
    lines += [f"    acl kg_tunnel srv_is_up({b.name}/tunnel-{i})" for i in b.servers]
    lines += [f"    {rule}" for rule in impersonation_rules("kg_tunnel")]
    lines.append("    http-request replace-path ^/clusters/[^/]+/k8s/?(.*)$ /\\1 if kg_tunnel")
    for i, (own, _) in b.servers.items():
        lines.append(f"    server tunnel-{i} unix@{own} check inter 1s fall 1 rise 1 "
                     "pool-purge-delay 30s")
    for i, (_, platform) in b.servers.items():
        lines.append(f"    server platform-{i} unix@{platform} backup")
    return "\n".join(lines) + "\n"


def render(backends: list[ClusterBackend], files_dir: Path,
           tunnels: list[TunnelBackend] | None = None) -> Rendered:
    files: dict[Path, bytes] = {}
    sections = ["# Written by the kubeglobe gateway; do not edit: it is rewritten.\n"]
    for b in sorted(backends, key=lambda b: b.cluster):
        ca_file = files_dir / f"{b.cluster}-ca.pem"
        files[ca_file] = b.ca
        server = (f"    server apiserver {b.host}:{b.port} ssl verify required "
                  f"ca-file {ca_file} alpn http/1.1")
        if is_host_name(b.host):
            server += f" sni str({b.host}) verifyhost {b.host}"
        if b.client_pem is not None:
            client_file = files_dir / f"{b.cluster}-client.pem"
            files[client_file] = b.client_pem
            server += f" crt {client_file}"
        lines = [f"backend {b.name}", "    mode http"]
        lines += status_errors({
            502: f"the apiserver of cluster {b.cluster} closed the connection without an "
                 "answer",
            503: f"the apiserver of cluster {b.cluster} is not reachable from the platform",
            504: f"the apiserver of cluster {b.cluster} did not answer in time"})
        lines += [f"    {rule}" for rule in impersonation_rules()]
        if b.token is not None:
            lines.append(f'    http-request set-header Authorization "Bearer {b.token}"')
        lines.append(f"    http-request replace-path ^/clusters/[^/]+/k8s/?(.*)$ {b.prefix}/\\1")
        lines.append(server)
        sections.append("\n".join(lines) + "\n")
    tunnels = sorted(tunnels or [], key=lambda t: t.cluster)
    sections += [_render_tunnel(t) for t in tunnels]
    clusters = {b.cluster: b.name for b in backends} | {t.cluster: t.name for t in tunnels}
    return Rendered(config="\n".join(sections), files=files, clusters=clusters)
