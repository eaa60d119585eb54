"""kube-apiservers of a cluster (one per control-plane node host of global, 1 on the host
for a workload cluster).

Each apiserver binds its own address (its node's, or the host bridge's, which nodes
reach) and serves a certificate whose SANs hold every apiserver's address, loopback
and the `kubernetes` Service's address. Admission, RBAC and service-account tokens are
on as in any real cluster.
"""

from __future__ import annotations

from functools import partial

from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.component import GO_ENV, Component
from kubeglobe.local.etcd import apiserver_etcd_urls
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, Daemon, EnvironmentPlan

EVICTION_SECONDS = 30


def endpoint_url(env: EnvironmentPlan, cluster: ClusterPlan) -> str:
    """The one address clients of the cluster use (the load balancer for global)."""
    return f"https://{env.host_ip}:{cluster.endpoint_port}"


def apiserver_argv(
    *, binaries: K8sBinaries, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki,
    server: Daemon,
) -> list[str]:
    serving = pki.pair("apiserver")
    etcd_client = pki.pair("etcd-client")
    kubelet_client = pki.pair("apiserver-kubelet-client")
    return [
        binaries.path("kube-apiserver"),
        f"--bind-address={server.ip}",
        f"--advertise-address={server.ip}",
        f"--secure-port={server.port}",
        "--insecure-port=0",
        f"--etcd-servers={','.join(apiserver_etcd_urls(cluster, server))}",
        f"--etcd-cafile={pki.etcd_ca.cert}",
        f"--etcd-certfile={etcd_client.cert}",
        f"--etcd-keyfile={etcd_client.key}",
        f"--client-ca-file={pki.ca.cert}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--kubelet-client-certificate={kubelet_client.cert}",
        f"--kubelet-client-key={kubelet_client.key}",
        f"--kubelet-certificate-authority={pki.ca.cert}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--service-account-key-file={pki.service_account.cert}",
        f"--service-account-signing-key-file={pki.service_account.key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={cluster.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        f"--apiserver-count={len(cluster.apiservers)}",
        "--endpoint-reconciler-type=lease",
        # Pods of a node that is lost are evicted after 30 s, not Kubernetes' 300 s (the
        # DefaultTolerationSeconds admission gives every pod these tolerations): the
        # platform's pods move to the other nodes within a minute (controlplane.py).
        f"--default-not-ready-toleration-seconds={EVICTION_SECONDS}",
        f"--default-unreachable-toleration-seconds={EVICTION_SECONDS}",
        "--profiling=false",
        "--v=1",
    ]


def apiserver_components(
    *, binaries: K8sBinaries, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    found = []
    admin = pki.pair("admin")
    for server in cluster.apiservers:
        url = f"https://{server.ip}:{server.port}/readyz"

        found.append(
            Component(
                key=f"{cluster.name}/{server.name}",
                cluster=cluster.name,
                kind="kube-apiserver",
                argv=apiserver_argv(
                    binaries=binaries, env=env, cluster=cluster, pki=pki, server=server
                ),
                log=env.cluster_dir(cluster.name) / "logs" / f"{server.name}.log",
                probe=partial(probe_http, url, ca=pki.ca.cert, client=admin),
                port=server.port,
                netns=server.netns,
                env=GO_ENV,
                start_timeout=120.0,
            )
        )
    return found
