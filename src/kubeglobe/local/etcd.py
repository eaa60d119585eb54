"""etcd members of a cluster: 3 in Raft for the global cluster (one on each control-plane
node host, so cutting a node's link is a real partition), 1 on the host for a workload
cluster.

Members speak TLS on both client and peer ports with the cluster's etcd CA and demand
client certificates. A member's data directory is kept across restarts, so a stopped
member rejoins its cluster with `--initial-cluster-state existing`-like behaviour (etcd
ignores the initial-cluster flags once its data directory holds a member).
"""

from __future__ import annotations

from functools import partial

from kubeglobe.local.component import GO_ENV, Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, Daemon, EnvironmentPlan, EtcdMember


def client_url(member: EtcdMember) -> str:
    """Where clients reach the member: loopback on the host, its address on a node."""
    return f"https://127.0.0.1:{member.client_port}" if member.netns is None else (
        member.client_url)


def apiserver_etcd_urls(cluster: ClusterPlan, server: Daemon) -> list[str]:
    """The members an apiserver uses: on a control-plane node host, its own (kubeadm's
    stacked topology: cut the node off and both are gone together); on the host, all."""
    own = [m for m in cluster.etcd if m.netns is not None and m.netns == server.netns]
    return [client_url(m) for m in own or cluster.etcd]


def _peer_url(member: EtcdMember) -> str:
    return f"https://{member.ip}:{member.peer_port}"


def etcd_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    initial = ",".join(f"{m.name}={_peer_url(m)}" for m in cluster.etcd)
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
            f"{member.client_url}",
            f"--advertise-client-urls={client_url(member)}",
            f"--listen-peer-urls={_peer_url(member)}",
            f"--initial-advertise-peer-urls={_peer_url(member)}",
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
        probe = partial(probe_http, f"{client_url(member)}/health", ca=pki.etcd_ca.cert,
                        client=pki.pair("etcd-client"), expect='"true"')

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
                netns=member.netns,
                env=GO_ENV,
                # Members of a new Raft cluster become healthy only together.
                start_timeout=90.0,
            )
        )
    return found
