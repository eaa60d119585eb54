"""The platform registry's objects and the order each node's containerd tries its replicas."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeglobe.local.topology import plan_environment
from kubeglobe.registry.manifests import registry_manifests, repository_of


def test_one_replica_on_each_control_plane_node_over_the_shared_storage() -> None:
    objects = {m["kind"]: m for m in registry_manifests(image="kubeglobe.local/registry:1",
                                                         storage="/state/registry")}
    assert set(objects) == {"Namespace", "DaemonSet", "PodDisruptionBudget", "Service"}
    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["volumes"] == [{"name": "storage", "hostPath": {
        "path": "/state/registry", "type": "DirectoryOrCreate"}}]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/", "port": 5000}
    assert container["resources"]["limits"]["memory"]
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_every_node_tries_every_replica_starting_at_a_different_one() -> None:
    env = plan_environment(state_dir=Path("/s"), slot=2, workload_clusters=2,
                           global_workers=2, workload_nodes=2)
    replicas = {f"http://10.250.2.{i}:5000" for i in (11, 12, 13)}
    firsts = []
    for node in env.nodes():
        mirrors = env.registry_mirrors(node)
        assert set(mirrors) == replicas and len(mirrors) == 3
        firsts.append(mirrors[0])
        if node.control_plane:
            assert mirrors[0] == f"http://{node.ip}:5000"  # its own replica first
    assert set(firsts) == replicas  # the pulls are spread over all three


@pytest.mark.parametrize(("image", "expected"), [
    ("kubeglobe.local/kubeglobe:0.1.0-ab12", ("kubeglobe", "0.1.0-ab12")),
    ("kubeglobe.local/team/app:1", ("team/app", "1")),
])
def test_repository_of_a_platform_image(image: str, expected: tuple[str, str]) -> None:
    assert repository_of(image) == expected


@pytest.mark.parametrize("image", ["docker.io/library/busybox:1", "kubeglobe.local/no-tag"])
def test_an_image_of_another_registry_is_refused_with_the_fix(image: str) -> None:
    with pytest.raises(ValueError, match=r"name it kubeglobe\.local/NAME:TAG"):
        repository_of(image)
