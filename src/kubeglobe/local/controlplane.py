"""kube-controller-manager and kube-scheduler, with leader election.

The global cluster runs one of each on every control-plane node host, as static pods of
that node's kubelet (`static_pods.py`), as kubeadm runs them: one that exits (as they do
when they lose their Lease, for instance while their node is cut off) is started again
by the kubelet, with no `up`. A workload cluster's pair runs on the environment's host,
where there is no kubelet, as processes the environment supervises. Only the Lease
holder acts, the others wait to take over. All talk to the cluster's endpoint (the load
balancer on global) with their own client certificates, and serve `/healthz` on their
node's address (loopback on the host, for a workload cluster); `--port=0` turns off the
insecure port, which would otherwise collide with a node's kubelet ports.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ControlPlaneDaemon:
    """One controller-manager or scheduler: where it serves and its flags (no program)."""

    part: str  # "controller-manager" or "scheduler"
    daemon: Daemon
    flags: list[str]

    @property
    def kind(self) -> str:
        return f"kube-{self.part}"

    @property
    def on_node_host(self) -> bool:
        return self.daemon.netns is not None

    @property
    def healthz(self) -> str:
        return f"https://{self.daemon.ip}:{self.daemon.port}/healthz"


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


def controlplane_daemons(*, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki,
                         ) -> list[ControlPlaneDaemon]:
    """Every controller-manager and scheduler of the cluster, with its flags (pure)."""
    serving = pki.pair("control-plane-serving")
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
        found += [ControlPlaneDaemon(part=part, daemon=daemon, flags=[
            *_common(kubeconfig, serving.cert, serving.key, daemon), *flags])
            for daemon in daemons]
    return found


def controlplane_components(
    *, binaries: K8sBinaries, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    """The daemons that run as the environment's processes: those on its host."""
    logs = env.cluster_dir(cluster.name) / "logs"
    return [
        Component(
            key=f"{cluster.name}/{d.daemon.name}",
            cluster=cluster.name,
            kind=d.kind,
            argv=[binaries.path(d.kind), *d.flags],
            log=logs / f"{d.daemon.name}.log",
            probe=partial(probe_http, d.healthz, ca=pki.ca.cert),
            port=d.daemon.port,
            env=GO_ENV,
        )
        for d in controlplane_daemons(env=env, cluster=cluster, pki=pki) if not d.on_node_host
    ]
