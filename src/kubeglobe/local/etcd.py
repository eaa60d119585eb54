"""etcd members of a cluster: 3 in Raft for the global cluster, 1 for a workload cluster.

Members speak TLS on both client and peer ports with the cluster's etcd CA and demand
client certificates. A member's data directory is kept across restarts, so a stopped
member rejoins its cluster with `--initial-cluster-state existing`-like behaviour (etcd
ignores the initial-cluster flags once its data directory holds a member).
"""

from __future__ import annotations

from functools import partial

from kubeglobe.local.component import Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan, EtcdMember


def client_urls(env: EnvironmentPlan, cluster: ClusterPlan) -> list[str]:
    return [f"https://127.0.0.1:{m.client_port}" for m in cluster.etcd]


def _peer_url(env: EnvironmentPlan, member: EtcdMember) -> str:
    return f"https://{env.host_ip}:{member.peer_port}"


def etcd_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    initial = ",".join(f"{m.name}={_peer_url(env, m)}" for m in cluster.etcd)
    token = f"kubeglobe-{env.slot}-{cluster.name}"
    found = []
    for member in cluster.etcd:
        own = pki.pair(f"etcd-{member.name}")
        data = env.cluster_dir(cluster.name) / "etcd" / member.name
        argv = [
            "etcd",
            f"--name={member.name}",
            f"--data-dir={data}",
            f"--listen-client-urls=https://127.0.0.1:{member.client_port},"
            f"https://{env.host_ip}:{member.client_port}",
            f"--advertise-client-urls=https://127.0.0.1:{member.client_port}",
            f"--listen-peer-urls={_peer_url(env, member)}",
            f"--initial-advertise-peer-urls={_peer_url(env, member)}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-token={token}",
            "--initial-cluster-state=new",
            f"--cert-file={own.cert}",
            f"--key-file={own.key}",
            f"--trusted-ca-file={pki.etcd_ca.cert}",
            "--client-cert-auth",
            f"--peer-cert-file={own.cert}",
            f"--peer-key-file={own.key}",
            f"--peer-trusted-ca-file={pki.etcd_ca.cert}",
            "--peer-client-cert-auth",
            "--snapshot-count=10000",
            "--logger=zap",
        ]
        url = f"https://127.0.0.1:{member.client_port}/health"
        probe = partial(
            probe_http, url, ca=pki.etcd_ca.cert, client=pki.pair("etcd-client"), expect='"true"'
        )

        found.append(
            Component(
                key=f"{cluster.name}/{member.name}",
                cluster=cluster.name,
                kind="etcd",
                argv=argv,
                log=env.cluster_dir(cluster.name) / "logs" / f"{member.name}.log",
                probe=probe,
                port=member.client_port,
                extra_ports=(member.peer_port,),
                # Members of a new Raft cluster become healthy only together.
                start_timeout=90.0,
            )
        )
    return found
