"""The API server replicas behind the gateway (pure): the `platform-servers` backend.

Rendered from the ready addresses of the `kubeglobe-server` Service's Endpoints (the
replicas are pods, so their addresses come and go), each checked over TLS by its
`/readyz` and verified as the platform servers' name. Each is also a spare (a backup
server, unchecked) that HAProxy sends to only when every checked one is down: under
load a replica's checks can fail while it still serves, and a replica's pod that is not
ready is a spare too when none is ready (a panic mode, as Envoy's). With no replica at
all the backend answers 503 as a Kubernetes Status saying so.
"""

from __future__ import annotations

from pathlib import Path

from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.haproxy import status_errors
from kubeglobe.kube.endpoints import Ready

SERVERS_BACKEND = "platform-servers"
SERVERS_SERVICE = "kubeglobe-server"  # the Service (and Endpoints) of the replicas


def render_servers(replicas: list[Ready], ca_file: Path, *,
                   not_ready: list[Ready] | None = None) -> str:
    lines = [f"backend {SERVERS_BACKEND}", "    mode http", "    option httpchk GET /readyz",
             "    http-check expect status 200", "    balance roundrobin",
             "    option redispatch", "    option allbackups", "    retries 3",
             # A replica that goes away closes its idle connections; a request HAProxy
             # sent on one just then is sent again to another replica, if it is a read.
             "    retry-on conn-failure empty-response response-timeout",
             "    http-request disable-l7-retry if !METH_GET !METH_OPTIONS"]
    lines += status_errors({503: "no API server replica of the platform is ready; "
                                 "retry in a moment"})
    tls = f"ssl verify required ca-file {ca_file} verifyhost {PLATFORM_TLS_NAME} alpn http/1.1"
    lines += [f"    server server-{r.name} {r.ip}:{r.port} {tls} check inter 1s fall 2 rise 2"
              for r in replicas]
    lines += [f"    server spare-{r.name} {r.ip}:{r.port} {tls} backup"
              for r in replicas or not_ready or []]
    return "\n".join(lines) + "\n"
