"""One gateway replica's HAProxy: its base configuration and its seeded files (pure but
for `seed`, which writes them).

The base holds what never changes while the replica runs: the runtime and master
sockets, the platform API's frontend (TLS ended here, the fast path's rules of
`frontend.py`, everything else to the API servers' backend). The gateway's sync owns the
second file, `gateway.cfg` (cluster backends, the API servers' backend, the agents'
port), and the maps; `seed` starts a replica with them empty: no identity known (every
request on the slow path) and no API server yet (a 503 saying so), until the sync has
read the platform.
"""

from __future__ import annotations

from pathlib import Path

from kubeglobe.files import write_atomic
from kubeglobe.gateway.frontend import GatewayFiles, fast_path_rules
from kubeglobe.gateway.runtime import UNIX_PATH_MAX
from kubeglobe.gateway.servers import SERVERS_BACKEND, render_servers


def render_gateway_config(*, files: GatewayFiles, platform_bind: str, serving_pem: str) -> str:
    """`serving_pem`: the certificate, its key beside it with the extension `.key`
    (`tls.crt` and `tls.key` of a mounted TLS Secret) or in the same file."""
    bind = f"ssl crt {serving_pem} alpn http/1.1"
    return f"""# Written by kubeglobe gateway (gateway/config.py); the sync writes gateway.cfg.
global
    maxconn 4096
    log stderr format short local0 notice
    stats socket {files.admin_socket()} mode 600 level admin
    # Agents attach by HAProxy's reverse HTTP (gateway/reverse.py), experimental in 3.0.
    expose-experimental-directives
    # What an agent may send per stream before the gateway acknowledges: HTTP/2's
    # 64 KiB default halves a port-forward's speed.
    tune.h2.initial-window-size 1048576
    tune.bufsize 262144
    # tls.crt finds its key in tls.key (not tls.crt.key)
    ssl-load-extra-del-ext

defaults
    mode http
    log global
    option dontlognull
    timeout connect 3s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-keep-alive 2m

frontend platform-api
    # A reload (the sync's, when backends or replicas change) leaves a client's idle
    # keep-alive connection open until its next request, answered with "close", instead
    # of closing it under a request the client is sending (a lost request).
    option idle-close-on-response
    bind {platform_bind} {bind}
{fast_path_rules(files)}    default_backend {SERVERS_BACKEND}
"""


def seed(files: GatewayFiles, *, base_config: str, replicas_ca: Path) -> None:
    """A replica's files as it starts: the base configuration, empty maps, the API
    servers' backend with no replica. Written whole each time (a new pod starts clean)."""
    for socket in (files.admin_socket(), files.master_socket()):
        if len(str(socket)) > UNIX_PATH_MAX:
            raise ValueError(f"socket path {socket} is longer than {UNIX_PATH_MAX} "
                             "characters; give the gateway a shorter --dir")
    files.certs.mkdir(parents=True, exist_ok=True)
    write_atomic(files.base, base_config.encode(), mode=0o644)
    for empty in (files.identities, files.clusters):
        write_atomic(empty, b"")
    write_atomic(files.backends, render_servers([], replicas_ca).encode(), mode=0o644)
