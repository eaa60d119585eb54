"""The global cluster's single endpoint: HAProxy in front of its control-plane nodes.

It stands in for the load balancer (or, from the ALB issue on, the VIP) a real
installation puts in front of its control-plane nodes, and is part of the environment,
not of the platform. Its apiserver frontend sends new connections only to apiservers
whose `/readyz` answers over TLS, so losing one costs clients at most one reconnect.
Its platform ports (the API, the agents', the API servers' to the agents) pass TCP
through to the gateway replicas, pods in the host network of each control-plane node
(`deploy/gateway.py`), which end TLS themselves; a replica that does not take
connections gets none.

The binary is the cache's HAProxy 3.0 (`haproxy_build.py`). Only its path is taken here:
`status` and `down` build these components too and must work without the cache.
"""

from __future__ import annotations

from pathlib import Path

from kubeglobe.local.component import Component
from kubeglobe.local.haproxy_build import haproxy_binary
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan


def haproxy_config_path(env: EnvironmentPlan, cluster: ClusterPlan) -> Path:
    return env.cluster_dir(cluster.name) / "haproxy.cfg"


def _passed_through(env: EnvironmentPlan, cluster: ClusterPlan, name: str, port: int) -> str:
    planes = [n for n in cluster.nodes if n.control_plane]
    servers = "\n".join(f"    server {n.name} {n.ip}:{port} check inter 1s fall 2 rise 2"
                         for n in planes)
    return f"""
frontend {name}
    bind {env.host_ip}:{port}
    bind 127.0.0.1:{port}
    default_backend {name}

backend {name}
    balance roundrobin
    option redispatch
    retries 3
    default-server on-marked-down shutdown-sessions
{servers}
"""


def render_haproxy_config(*, env: EnvironmentPlan, cluster: ClusterPlan, ca_file: str) -> str:
    servers = "\n".join(
        f"    server {a.name} {a.ip}:{a.port} check check-ssl verify required "
        f"ca-file {ca_file} inter 1s fall 2 rise 2"
        for a in cluster.apiservers
    )
    gateway = "".join(
        _passed_through(env, cluster, name, port)
        for name, port in (("platform-api", cluster.platform_endpoint_port),
                           ("platform-agents", cluster.agent_endpoint_port),
                           ("platform-servers-to-agents", cluster.servers_agents_port))
        if port is not None)
    return f"""global
    maxconn 4096
    log stderr format short local0 notice

defaults
    mode tcp
    log global
    option dontlognull
    timeout connect 3s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h

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
{gateway}"""


def loadbalancer_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    if not cluster.has_load_balancer:
        return []
    config = haproxy_config_path(env, cluster)
    url = f"https://{env.host_ip}:{cluster.endpoint_port}/readyz"
    admin = pki.pair("admin")
    return [Component(
        key=f"{cluster.name}/haproxy", cluster=cluster.name, kind="haproxy",
        argv=[str(haproxy_binary()), "-db", "-f", str(config)],
        log=env.cluster_dir(cluster.name) / "logs" / "haproxy.log",
        probe=lambda: probe_http(url, ca=pki.ca.cert, client=admin),
        port=cluster.endpoint_port,
        extra_ports=tuple(p for p in (cluster.platform_endpoint_port,
                                      cluster.agent_endpoint_port,
                                      cluster.servers_agents_port) if p is not None),
        files={config: render_haproxy_config(env=env, cluster=cluster,
                                             ca_file=str(pki.ca.cert))},
    )]
