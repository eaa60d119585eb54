"""The global cluster's single endpoint: HAProxy in front of its apiservers and the platform.

The apiserver frontend is TCP and sends new connections only to apiservers whose
`/readyz` answers over TLS, so losing one costs clients at most one reconnect. The
platform frontend is the gateway: HTTP with TLS ended here; cluster-proxy requests from
callers it knows are answered by HAProxy itself (`gateway/frontend.py`), the rest go over
TLS to the API server replicas. Master-worker mode lets `kubeglobe gateway` reload new
cluster backends through the master socket without dropping open connections.

The binary is the cache's HAProxy 3.0 (`haproxy_build.py`). Only its path is taken here:
`status` and `down` build these components too and must work without the cache.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kubeglobe.files import write_atomic
from kubeglobe.gateway.frontend import GatewayFiles, fast_path_rules
from kubeglobe.gateway.runtime import UNIX_PATH_MAX
from kubeglobe.gateway.servers import SERVERS_BACKEND, render_servers
from kubeglobe.local.component import Component
from kubeglobe.local.haproxy_build import haproxy_binary
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan


def haproxy_config_path(env: EnvironmentPlan, cluster: ClusterPlan) -> Path:
    return env.cluster_dir(cluster.name) / "haproxy.cfg"


def gateway_files(env: EnvironmentPlan, cluster: ClusterPlan) -> GatewayFiles:
    return GatewayFiles(env.cluster_dir(cluster.name) / "gateway")


def render_haproxy_config(*, env: EnvironmentPlan, cluster: ClusterPlan, ca_file: str,
                          gateway: GatewayFiles | None = None,
                          serving_pem: Path | None = None) -> str:
    servers = "\n".join(
        f"    server {a.name} {a.ip}:{a.port} check check-ssl verify required "
        f"ca-file {ca_file} inter 1s fall 2 rise 2"
        for a in cluster.apiservers
    )
    platform = ""
    admin = ""
    if cluster.platform_endpoint_port is not None:
        assert gateway is not None and serving_pem is not None
        # Agents attach to the gateway by HAProxy's reverse HTTP (gateway/reverse.py),
        # still marked experimental in 3.0; the gateway writes those rules.
        admin = (f"    stats socket {gateway.admin_socket()} mode 600 level admin\n"
                 "    expose-experimental-directives\n"
                 # What an agent may send per stream before the gateway acknowledges:
                 # HTTP/2's 64 KiB default halves a port-forward's speed.
                 "    tune.h2.initial-window-size 1048576\n"
                 "    tune.bufsize 262144\n")
        bind = f"ssl crt {serving_pem} alpn http/1.1"
        platform = f"""
frontend platform-api
    mode http
    # A reload (the gateway's, when backends or replicas change) leaves a client's idle
    # keep-alive connection open until its next request, answered with "close", instead
    # of closing it under a request the client is sending (a lost request).
    option idle-close-on-response
    bind {env.host_ip}:{cluster.platform_endpoint_port} {bind}
    bind 127.0.0.1:{cluster.platform_endpoint_port} {bind}
{fast_path_rules(gateway)}    default_backend {SERVERS_BACKEND}
"""
    return f"""global
    maxconn 4096
    log stderr format short local0 notice
{admin}
defaults
    mode tcp
    log global
    option dontlognull
    timeout connect 3s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-keep-alive 2m

frontend apiserver
    bind {env.host_ip}:{cluster.endpoint_port}
    bind 127.0.0.1:{cluster.endpoint_port}
    default_backend apiservers

backend apiservers
    option httpchk GET /readyz
    http-check expect status 200
    balance roundrobin
    option redispatch
    retries 3
    default-server on-marked-down shutdown-sessions
{servers}
{platform}"""


def _prepare_gateway(gateway: GatewayFiles, serving_pem: Path, pki: ClusterPki) -> None:
    """The serving bundle HAProxy ends TLS with, and the gateway's files seeded empty
    (the gateway process owns them from then on): the API servers' backend with no
    replica yet (the frontend names it), until the gateway has read their Endpoints."""
    pair = pki.pair("platform-server")
    write_atomic(serving_pem, pair.cert.read_bytes().rstrip(b"\n") + b"\n"
                   + pair.key.read_bytes())
    for socket in (gateway.admin_socket(), gateway.master_socket()):
        if len(str(socket)) > UNIX_PATH_MAX:
            raise RuntimeError(f"socket path {socket} is longer than {UNIX_PATH_MAX} "
                               "characters; use a shorter --state-dir")
    gateway.certs.mkdir(parents=True, exist_ok=True)
    for seeded in (gateway.identities, gateway.clusters):
        if not seeded.exists():
            write_atomic(seeded, b"")
    if not gateway.backends.exists():
        write_atomic(gateway.backends, render_servers([], pki.ca.cert).encode(), mode=0o644)


def loadbalancer_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    if not cluster.has_load_balancer:
        return []
    config = haproxy_config_path(env, cluster)
    url = f"https://{env.host_ip}:{cluster.endpoint_port}/readyz"
    admin = pki.pair("admin")
    argv = [str(haproxy_binary()), "-db", "-f", str(config)]
    gateway, serving_pem, prepare = None, None, None
    if cluster.platform_endpoint_port is not None:
        gateway = gateway_files(env, cluster)
        serving_pem = gateway.directory / "serving.pem"
        argv[1:] = ["-W", "-db", "-S", f"{gateway.master_socket()},mode,600",
                    "-f", str(config), "-f", str(gateway.backends)]
        prepare = partial(_prepare_gateway, gateway, serving_pem, pki)
    return [Component(
        key=f"{cluster.name}/haproxy", cluster=cluster.name, kind="haproxy", argv=argv,
        log=env.cluster_dir(cluster.name) / "logs" / "haproxy.log",
        probe=lambda: probe_http(url, ca=pki.ca.cert, client=admin),
        port=cluster.endpoint_port,
        extra_ports=tuple(p for p in (cluster.platform_endpoint_port,
                                      cluster.agent_endpoint_port,
                                      cluster.servers_agents_port) if p is not None),
        files={config: render_haproxy_config(env=env, cluster=cluster,
                                             ca_file=str(pki.ca.cert), gateway=gateway,
                                             serving_pem=serving_pem)},
        prepare=prepare,
    )]
