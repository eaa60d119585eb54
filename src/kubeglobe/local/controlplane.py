"""kube-controller-manager and kube-scheduler, with leader election.

The global cluster runs one of each on every control-plane node host; only the Lease
holder acts, the others wait to take over. All talk to the cluster's endpoint (the load
balancer on global) with their own client certificates, and serve `/healthz` on their
node's address (loopback on the host, for a workload cluster); `--port=0` turns off the
insecure port, which would otherwise collide with a node's kubelet ports.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.component import GO_ENV, Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, Daemon, EnvironmentPlan

NODE_GRACE_SECONDS = 30


def component_kubeconfig(env: EnvironmentPlan, cluster: ClusterPlan, user: str) -> Path:
    return env.cluster_dir(cluster.name) / "kubeconfigs" / f"{user}.kubeconfig"


def _common(kubeconfig: Path, serving_cert: Path, serving_key: Path, where: Daemon,
            ) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=true",
        "--port=0",
        f"--bind-address={where.ip}",
        f"--secure-port={where.port}",
        f"--tls-cert-file={serving_cert}",
        f"--tls-private-key-file={serving_key}",
        "--profiling=false",
        "--v=1",
    ]


def controlplane_components(
    *, binaries: K8sBinaries, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    serving = pki.pair("control-plane-serving")
    logs = env.cluster_dir(cluster.name) / "logs"
    controller_manager_flags = [
        f"--cluster-name={cluster.name}",
        f"--root-ca-file={pki.ca.cert}",
        f"--service-account-private-key-file={pki.service_account.key}",
        f"--cluster-signing-cert-file={pki.ca.cert}",
        f"--cluster-signing-key-file={pki.ca.key}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={cluster.service_cidr}",
        "--controllers=*,bootstrapsigner,tokencleaner",
        # A node is NotReady after 30 s without a heartbeat (Kubernetes: 40 s): three of
        # its 10 s lease renewals, so a kubelet slowed by a busy machine is not called
        # lost; its pods are evicted 30 s later (apiserver.py's tolerations).
        f"--node-monitor-grace-period={NODE_GRACE_SECONDS}s",
    ]
    found = []
    for part, daemons, flags in (
        ("controller-manager", cluster.controller_managers, controller_manager_flags),
        ("scheduler", cluster.schedulers, []),
    ):
        kubeconfig = component_kubeconfig(env, cluster, part)
        for daemon in daemons:
            found.append(
                Component(
                    key=f"{cluster.name}/{daemon.name}",
                    cluster=cluster.name,
                    kind=f"kube-{part}",
                    argv=[
                        binaries.path(f"kube-{part}"),
                        *_common(kubeconfig, serving.cert, serving.key, daemon),
                        *flags,
                    ],
                    log=logs / f"{daemon.name}.log",
                    probe=partial(probe_http, f"https://{daemon.ip}:{daemon.port}/healthz",
                                  ca=pki.ca.cert),
                    port=daemon.port,
                    netns=daemon.netns,
                    env=GO_ENV,
                )
            )
    return found
