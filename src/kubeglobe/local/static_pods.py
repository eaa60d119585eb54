"""Static pods: the pods a kubelet runs from files in its node's manifest directory.

Global's control-plane node hosts run their controller-manager and scheduler this way
(`controlplane.py` says why). `static_pod_manifests` renders each control-plane node's
files (pure): one Pod per daemon in `kube-system`, in the node's network (the daemon
serves on the node's address), the cluster's `pki` and `kubeconfigs` directories mounted
read-only at their own paths (so the flags are the same as on the host), a liveness
probe on `/healthz`, requests, critical priority. The kubelet shows each as a mirror
pod named `<daemon>-<node>` (kubectl reads it and its logs) and starts it again
whenever it exits. `write_static_pods` puts the files in place: each written
whole (the kubelet ignores dot-files, so it never reads half of one), the files of
daemons the node no longer runs removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubeglobe.files import write_atomic
from kubeglobe.local.component import GO_ENV
from kubeglobe.local.control_plane_image import BIN_DIR
from kubeglobe.local.controlplane import ControlPlaneDaemon
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan, Node

# kubeadm's requests are 200m and 100m; the environment's daemons are mostly idle
REQUESTS = {"controller-manager": {"cpu": "50m", "memory": "64Mi"},
            "scheduler": {"cpu": "20m", "memory": "32Mi"}}
TIER = {"tier": "control-plane"}
MOUNTED = ("pki", "kubeconfigs")  # in the cluster's directory


def static_pod(daemon: ControlPlaneDaemon, *, image: str, cluster_dir: Path) -> dict[str, Any]:
    """The Pod of one daemon (pure)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": daemon.kind, "namespace": "kube-system",
                     "labels": {"component": daemon.kind, **TIER}},
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": daemon.kind,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": [f"{BIN_DIR}/{daemon.kind}", *daemon.flags],
                "env": [{"name": k, "value": v} for k, v in sorted(GO_ENV.items())],
                "resources": {"requests": REQUESTS[daemon.part]},
                "livenessProbe": {
                    "httpGet": {"host": daemon.daemon.ip, "port": daemon.daemon.port,
                                "path": "/healthz", "scheme": "HTTPS"},
                    "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 5,
                    "failureThreshold": 6},
                "volumeMounts": [{"name": d, "mountPath": str(cluster_dir / d),
                                  "readOnly": True} for d in MOUNTED],
            }],
            "volumes": [{"name": d, "hostPath": {"path": str(cluster_dir / d),
                                                 "type": "Directory"}} for d in MOUNTED],
        },
    }


def static_pod_manifests(*, env: EnvironmentPlan, cluster: ClusterPlan,
                         daemons: list[ControlPlaneDaemon], image: str,
                         ) -> dict[str, dict[str, str]]:
    """Node name -> {file name: YAML} for every control-plane node host (pure); a node
    that runs no daemon gets an empty directory."""
    found: dict[str, dict[str, str]] = {n.name: {} for n in cluster.nodes if n.control_plane}
    by_netns: dict[str | None, Node] = {n.netns: n for n in cluster.nodes}
    for daemon in daemons:
        if not daemon.on_node_host:
            continue
        node = by_netns[daemon.daemon.netns]
        pod = static_pod(daemon, image=image, cluster_dir=env.cluster_dir(cluster.name))
        found.setdefault(node.name, {})[f"{daemon.kind}.yaml"] = yaml.safe_dump(
            pod, sort_keys=False)
    return found


def write_static_pods(directory: Path, files: dict[str, str]) -> list[str]:
    """Make `directory` hold exactly `files`; returns the names written or removed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and path.read_text() == text:
            continue
        write_atomic(path, text.encode(), mode=0o644)
        changed.append(name)
    for stale in sorted(directory.glob("*.yaml")):
        if stale.name not in files:
            stale.unlink()
            changed.append(stale.name)
    return changed
