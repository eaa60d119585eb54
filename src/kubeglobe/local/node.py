"""A real node: its own containerd, kubelet and kube-proxy inside its network namespace.

Each node has its own containerd root, state and socket, a CNI bridge inside its own
namespace, and a kubelet whose settings were seen working in this sandbox (cgroupfs,
no QoS cgroups, no swap check, `restrict_oom_score_adj` in containerd). Pod network
namespaces are mounted under the node's containerd state directory, so tearing the
node down finds every mount below the environment's own directory.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path

import yaml

from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.component import GO_ENV, Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.images import PAUSE_IMAGE
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import (
    KUBE_PROXY_HEALTHZ_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    ClusterPlan,
    EnvironmentPlan,
    Node,
)
from kubeglobe.registry.manifests import IMAGE_PREFIX

CNI_BIN_DIR = "/usr/lib/cni"
# kubelet v1.20 writes container logs here whatever its root directory is.
POD_LOGS = Path("/var/log/pods")
CONTAINER_LOG_LINKS = Path("/var/log/containers")


class NodePaths:
    def __init__(self, env: EnvironmentPlan, node: Node) -> None:
        self.root = env.node_dir(node)
        self.containerd_root = self.root / "containerd" / "root"
        self.containerd_state = self.root / "containerd" / "state"
        self.containerd_config = self.root / "containerd" / "config.toml"
        self.cni_conf_dir = self.root / "cni" / "net.d"
        self.cni_data_dir = self.root / "cni" / "ipam"
        self.kubelet_root = self.root / "kubelet"
        self.kubelet_config = self.root / "kubelet-config.yaml"
        self.static_pods = self.root / "manifests"  # a control-plane node's static pods
        self.kubeconfig = self.root / "kubelet.kubeconfig"
        self.proxy_config = self.root / "kube-proxy-config.yaml"
        self.proxy_kubeconfig = self.root / "kube-proxy.kubeconfig"
        self.resolv_conf = self.root / "resolv.conf"
        self.logs = self.root / "logs"
        # This node's pod logs (the kubelet's /var/log/pods, kept apart per node; see
        # binaries.py for why the shared one loses logs).
        self.pod_logs = self.root / "pod-logs"

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"


def remove_pod_logs(paths: NodePaths, *, live_elsewhere: set[str] | None = None) -> int:
    """Delete the log files of this node's pods and the host's links to them.

    The node's own log root goes whole. In the host-wide `/var/log/pods` (used by
    kubelets built before the per-node log root), the dirs of this node's pods go, and,
    given `live_elsewhere` (the pod UIDs every kubelet on this machine still has), the
    orphans whose pod no kubelet has any more.
    """
    pods = paths.kubelet_root / "pods"
    uids = {p.name for p in pods.iterdir()} if pods.is_dir() else set()
    removed: set[Path] = set()
    if paths.pod_logs.is_dir():
        removed |= set(paths.pod_logs.iterdir())
        shutil.rmtree(paths.pod_logs, ignore_errors=True)
    if POD_LOGS.is_dir():
        for d in POD_LOGS.iterdir():
            uid = d.name.rsplit("_", 1)[-1]
            if uid in uids or (live_elsewhere is not None and uid not in live_elsewhere):
                shutil.rmtree(d, ignore_errors=True)
                removed.add(d)
    if CONTAINER_LOG_LINKS.is_dir():
        for link in CONTAINER_LOG_LINKS.iterdir():
            if link.is_symlink() and any(
                Path(os.readlink(link)).is_relative_to(d) for d in removed
            ):
                link.unlink(missing_ok=True)
    return len(removed)


def pod_uids_under(state_dir: Path) -> set[str]:
    """UIDs of the pods the kubelets of the environment in `state_dir` still have."""
    return {p.name for p in state_dir.glob("nodes/*/kubelet/pods/*")}


def render_containerd_config(paths: NodePaths, *, mirrors: tuple[str, ...]) -> str:
    """`mirrors`: the platform registry's replicas, tried in order for `kubeglobe.local`."""
    endpoints = ", ".join(f'"{m}"' for m in mirrors)
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{paths.socket}"

[ttrpc]
  address = "{paths.socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.root / 'containerd' / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{paths.root / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{IMAGE_PREFIX}"]
    endpoint = [{endpoints}]
"""


def render_cni_config(*, node: Node, paths: NodePaths) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "kubeglobe",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(paths.cni_data_dir),
                        "ranges": [[{"subnet": node.pod_cidr, "gateway": node.pod_gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def render_kubelet_config(*, node: Node, pki: ClusterPki, paths: NodePaths,
                          cluster_dns: str) -> str:
    serving = pki.pair(f"kubelet-serving-{node.name}")
    return yaml.safe_dump(
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": node.ip,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": node.ip,
            "healthzPort": KUBELET_HEALTHZ_PORT,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca.cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "clusterDomain": "cluster.local",
            "clusterDNS": [cluster_dns],  # the kube-dns Service (dns/manifests.py)
            "resolvConf": str(paths.resolv_conf),
            "podCIDR": node.pod_cidr,
            "maxPods": 60,
            "serializeImagePulls": False,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                             "imagefs.available": "2%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "containerLogMaxSize": "10Mi",
            **({"staticPodPath": str(paths.static_pods)} if node.control_plane else {}),
        },
        sort_keys=False,
    )


def render_kube_proxy_config(*, node: Node, cluster: ClusterPlan, paths: NodePaths) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(paths.proxy_kubeconfig)},
            "hostnameOverride": node.name,
            "bindAddress": node.ip,
            "healthzBindAddress": f"{node.ip}:{KUBE_PROXY_HEALTHZ_PORT}",
            "metricsBindAddress": "127.0.0.1:10249",
            "mode": "iptables",
            "clusterCIDR": cluster.cluster_cidr,
            # Leave the host's conntrack sysctls alone: this sandbox may refuse them.
            "conntrack": {"maxPerCore": 0},
        },
        sort_keys=False,
    )


CONTROL_PLANE_TAINT = "node-role.kubernetes.io/master"
# What marks a control-plane node, as kubeadm marks them (its kubelet may not set these
# itself: `up` labels the node once it has registered).
CONTROL_PLANE_ROLES = ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")


def _control_plane_flags(node: Node) -> list[str]:
    """A control-plane node takes no ordinary pods: only those that tolerate its taint."""
    return [f"--register-with-taints={CONTROL_PLANE_TAINT}=:NoSchedule"] if (
        node.control_plane) else []


def node_components(
    *, binaries: K8sBinaries, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki
) -> list[Component]:
    found = []
    for node in cluster.nodes:
        paths = NodePaths(env, node)
        prefix = f"{cluster.name}/{node.name}"
        socket = paths.socket

        def containerd_probe(socket: Path = socket) -> str:
            return "ok" if socket.exists() else f"no socket at {socket} yet"

        found.append(
            Component(
                key=f"{prefix}/containerd",
                cluster=cluster.name,
                kind="containerd",
                argv=["containerd", "--config", str(paths.containerd_config)],
                log=paths.logs / "containerd.log",
                probe=containerd_probe,
                netns=node.netns,
                env=GO_ENV,
                files={
                    paths.containerd_config: render_containerd_config(
                        paths, mirrors=env.registry_mirrors(node)),
                    paths.cni_conf_dir / "10-kubeglobe.conflist": render_cni_config(
                        node=node, paths=paths
                    ),
                    paths.resolv_conf: "",
                },
            )
        )
        kubelet_health = f"http://{node.ip}:{KUBELET_HEALTHZ_PORT}/healthz"
        found.append(
            Component(
                key=f"{prefix}/kubelet",
                cluster=cluster.name,
                kind="kubelet",
                argv=[
                    binaries.path("kubelet"),
                    f"--config={paths.kubelet_config}",
                    f"--kubeconfig={paths.kubeconfig}",
                    f"--root-dir={paths.kubelet_root}",
                    "--container-runtime=remote",
                    f"--container-runtime-endpoint=unix://{socket}",
                    f"--node-ip={node.ip}",
                    f"--hostname-override={node.name}",
                    f"--node-labels=kubeglobe.io/cluster={cluster.name}",
                    *_control_plane_flags(node),
                    "--v=1",
                ],
                log=paths.logs / "kubelet.log",
                env={**GO_ENV, "KUBELET_POD_LOGS_DIR": str(paths.pod_logs)},
                probe=partial(probe_http, kubelet_health),
                port=KUBELET_PORT,
                netns=node.netns,
                files={
                    paths.kubelet_config: render_kubelet_config(
                        node=node, pki=pki, paths=paths, cluster_dns=cluster.dns_service_ip)
                },
            )
        )
        proxy_health = f"http://{node.ip}:{KUBE_PROXY_HEALTHZ_PORT}/healthz"
        found.append(
            Component(
                key=f"{prefix}/kube-proxy",
                cluster=cluster.name,
                kind="kube-proxy",
                argv=[binaries.path("kube-proxy"), f"--config={paths.proxy_config}", "--v=1"],
                log=paths.logs / "kube-proxy.log",
                probe=partial(probe_http, proxy_health, expect=""),
                port=KUBE_PROXY_HEALTHZ_PORT,
                netns=node.netns,
                env=GO_ENV,
                files={
                    paths.proxy_config: render_kube_proxy_config(
                        node=node, cluster=cluster, paths=paths
                    )
                },
            )
        )
    return found
