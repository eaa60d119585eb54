"""The global cluster's single endpoint: HAProxy in TCP mode in front of its apiservers.

HAProxy checks each apiserver's `/readyz` over TLS and sends new connections only to
ready ones, so losing an apiserver costs clients at most one reconnect. It binds the
host bridge address (for nodes) and loopback (for people). The ALB/VIP work replaces
it later with the platform's own gateway.
"""

from __future__ import annotations

from kubeglobe.local.component import Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan


def render_haproxy_config(*, env: EnvironmentPlan, cluster: ClusterPlan, ca_file: str) -> str:
    servers = "\n".join(
        f"    server {a.name} {a.ip}:{a.port} check check-ssl verify required "
        f"ca-file {ca_file} inter 1s fall 2 rise 2"
        for a in cluster.apiservers
    )
    platform = ""
    if cluster.platform_endpoint_port is not None:
        replicas = "\n".join(
            f"    server server-{i} {env.host_ip}:{port} check check-ssl verify required "
            f"ca-file {ca_file} inter 1s fall 2 rise 2"
            for i, port in enumerate(cluster.platform_server_ports)
        )
        platform = f"""
frontend platform-api
    bind {env.host_ip}:{cluster.platform_endpoint_port}
    bind 127.0.0.1:{cluster.platform_endpoint_port}
    default_backend platform-servers

backend platform-servers
    option httpchk GET /readyz
    http-check expect status 200
    balance roundrobin
    option redispatch
    retries 3
{replicas}
"""
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
{platform}"""


def loadbalancer_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    if not cluster.has_load_balancer:
        return []
    config = env.cluster_dir(cluster.name) / "haproxy.cfg"
    url = f"https://{env.host_ip}:{cluster.endpoint_port}/readyz"
    admin = pki.pair("admin")
    return [
        Component(
            key=f"{cluster.name}/haproxy",
            cluster=cluster.name,
            kind="haproxy",
            argv=["haproxy", "-db", "-f", str(config)],
            log=env.cluster_dir(cluster.name) / "logs" / "haproxy.log",
            probe=lambda: probe_http(url, ca=pki.ca.cert, client=admin),
            port=cluster.endpoint_port,
            extra_ports=(cluster.platform_endpoint_port,)
            if cluster.platform_endpoint_port is not None else (),
            files={
                config: render_haproxy_config(env=env, cluster=cluster, ca_file=str(pki.ca.cert))
            },
        )
    ]
