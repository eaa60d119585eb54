"""Global's controller-managers and schedulers are static pods of its control-plane
nodes; a workload cluster's run as processes on the environment's host."""

from pathlib import Path

import yaml

from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.controlplane import controlplane_components, controlplane_daemons
from kubeglobe.local.node import NodePaths, render_kubelet_config
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.static_pods import static_pod_manifests, write_static_pods
from kubeglobe.local.topology import plan_environment

ENV = plan_environment(state_dir=Path("/s"), slot=1, workload_clusters=1)
GLOBAL, WORKLOAD = ENV.clusters
IMAGE = "kubeglobe.local/kube-control-plane:v1.20.2-abc"


def _pki(name: str) -> ClusterPki:
    return ClusterPki(dir=ENV.cluster_dir(name) / "pki")


def test_each_control_plane_node_runs_one_controller_manager_and_one_scheduler() -> None:
    daemons = controlplane_daemons(env=ENV, cluster=GLOBAL, pki=_pki("global"))
    manifests = static_pod_manifests(env=ENV, cluster=GLOBAL, daemons=daemons, image=IMAGE)
    planes = [n for n in GLOBAL.nodes if n.control_plane]
    assert len(planes) == 3 and set(manifests) == {n.name for n in planes}
    for node in planes:
        assert sorted(manifests[node.name]) == ["kube-controller-manager.yaml",
                                                "kube-scheduler.yaml"]
        pod = yaml.safe_load(manifests[node.name]["kube-controller-manager.yaml"])
        spec = pod["spec"]
        container = spec["containers"][0]
        assert spec["hostNetwork"] is True and container["image"] == IMAGE
        assert container["command"][0] == "/usr/local/bin/kube-controller-manager"
        # it serves on its own node's address, where its probe asks
        assert f"--bind-address={node.ip}" in container["command"]
        assert container["livenessProbe"]["httpGet"]["host"] == node.ip
        assert "--leader-elect=true" in container["command"]
        # what its flags name is mounted at the same path, read-only, and nothing else
        mounted = {m["mountPath"] for m in container["volumeMounts"] if m["readOnly"]}
        assert mounted == {str(ENV.cluster_dir("global") / d) for d in ("pki", "kubeconfigs")}
        named = [a.split("=", 1)[1] for a in container["command"] if a.startswith("--")
                 and "=" in a and a.split("=", 1)[1].startswith("/")]
        assert named and all(any(p.startswith(m + "/") for m in mounted) for p in named)
    # global's pair are pods, none of them a process of the environment
    assert controlplane_components(binaries=K8sBinaries(dir=Path("/bin")), env=ENV,
                                   cluster=GLOBAL, pki=_pki("global")) == []


def test_a_workload_clusters_pair_are_processes_on_the_host() -> None:
    parts = controlplane_components(binaries=K8sBinaries(dir=Path("/bin")), env=ENV,
                                    cluster=WORKLOAD, pki=_pki("workload-1"))
    assert sorted(p.kind for p in parts) == ["kube-controller-manager", "kube-scheduler"]
    assert all(p.netns is None and p.argv[0].startswith("/bin/kube-") for p in parts)
    daemons = controlplane_daemons(env=ENV, cluster=WORKLOAD, pki=_pki("workload-1"))
    assert static_pod_manifests(env=ENV, cluster=WORKLOAD, daemons=daemons,
                                image=IMAGE) == {}


def test_only_control_plane_kubelets_read_static_pods() -> None:
    for node in (*GLOBAL.nodes, *WORKLOAD.nodes):
        paths = NodePaths(ENV, node)
        config = yaml.safe_load(render_kubelet_config(
            node=node, pki=_pki("global"), paths=paths, cluster_dns="10.96.0.10"))
        assert config.get("staticPodPath") == (str(paths.static_pods) if node.control_plane
                                                else None)


def test_writing_static_pods_is_idempotent_and_removes_what_is_gone(tmp_path: Path) -> None:
    assert write_static_pods(tmp_path, {"a.yaml": "1", "b.yaml": "2"}) == ["a.yaml", "b.yaml"]
    assert write_static_pods(tmp_path, {"a.yaml": "1", "b.yaml": "2"}) == []
    assert write_static_pods(tmp_path, {"a.yaml": "3"}) == ["a.yaml", "b.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]
    assert (tmp_path / "a.yaml").read_text() == "3"
