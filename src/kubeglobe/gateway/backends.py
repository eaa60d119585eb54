"""The gateway's HAProxy backends for imported clusters (pure).

One backend per imported cluster whose kubeconfig HAProxy can use as it is; any other
cluster (no CA, insecure TLS, an IPv6 literal, a token with odd characters, ...) takes
the API servers' slow path, which handles every kubeconfig. Registered clusters'
backends are the agents' own (`reverse.py`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kubeglobe.gateway.frontend import IMPORTED_PREFIX, impersonation_rules
from kubeglobe.haproxy import is_host_name, status_errors
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
        return f"{IMPORTED_PREFIX}{self.cluster}"


@dataclass(frozen=True)
class Rendered:
    config: str
    files: dict[Path, bytes]
    clusters: dict[str, str]  # cluster -> backend, the frontend's map
    reverse: frozenset[str] = frozenset()  # reverse backends, mapped while attached


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


def render(backends: list[ClusterBackend], files_dir: Path) -> Rendered:
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
    return Rendered(config="\n".join(sections), files=files,
                    clusters={b.cluster: b.name for b in backends})
