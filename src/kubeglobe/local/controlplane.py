"""kube-controller-manager and kube-scheduler, with leader election.

The global cluster runs two of each; only the Lease holder acts, the other waits to take
over. Both talk to the cluster's endpoint (the load balancer on global) with their own
client certificates, and serve `/healthz` on loopback only (`--port=0` turns off the
insecure port, which would otherwise collide with a node's kubelet ports).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.component import Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan


def component_kubeconfig(env: EnvironmentPlan, cluster: ClusterPlan, user: str) -> Path:
    return env.cluster_dir(cluster.name) / "kubeconfigs" / f"{user}.kubeconfig"


def _common(kubeconfig: Path, serving_cert: Path, serving_key: Path, port: int) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=true",
        "--port=0",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
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
    ]
    found = []
    for part, ports, flags in (
        ("controller-manager", cluster.controller_manager_ports, controller_manager_flags),
        ("scheduler", cluster.scheduler_ports, []),
    ):
        kubeconfig = component_kubeconfig(env, cluster, part)
        for i, port in enumerate(ports):
            found.append(
                Component(
                    key=f"{cluster.name}/{part}-{i}",
                    cluster=cluster.name,
                    kind=f"kube-{part}",
                    argv=[
                        binaries.path(f"kube-{part}"),
                        *_common(kubeconfig, serving.cert, serving.key, port),
                        *flags,
                    ],
                    log=logs / f"{part}-{i}.log",
                    probe=partial(
                        probe_http, f"https://127.0.0.1:{port}/healthz", ca=pki.ca.cert
                    ),
                    port=port,
                )
            )
    return found
