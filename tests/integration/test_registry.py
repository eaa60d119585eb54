"""The platform registry: an image pushed once is pulled by the nodes of every cluster,
and a node pulls on while the replica it tries first does not answer."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kubeglobe.local.images import (
    ImageSpec,
    LayerFile,
    _busybox_files,
    _layer_tar,
    render_oci_archive,
)
from kubeglobe.local.topology import GLOBAL, Node
from kubeglobe.registry.manifests import IMAGE_PREFIX, PORT
from kubeglobe.registry.push import push_archive
from tests.integration.conftest import Env, until


def _pushed_image(env: Env, tmp_path: Path) -> tuple[str, str]:
    """A new image (a layer no node has: a file holding a fresh id), pushed to the
    registry; its name and the id."""
    marker = uuid.uuid4().hex
    spec = ImageSpec(name=f"{IMAGE_PREFIX}/registry-test-{marker[:8]}:1",
                     files=lambda: [*_busybox_files(), LayerFile(path="id", data=marker.encode())])
    archive = tmp_path / "image.tar"
    archive.write_bytes(render_oci_archive(spec, _layer_tar(spec.files())))
    first = env.plan.registry_mirrors(env.plan.cluster(GLOBAL).nodes[0])[0]
    with httpx.Client(trust_env=False, timeout=60) as http:
        pushed = push_archive(archive, registry=first, client=http)
    assert pushed.blobs_sent == 2  # its config and its layer: new to the registry
    return spec.name, marker


def _run_to_completion(env: Env, cluster: str, image: str) -> str:
    """Run a pod of `image` in `cluster` that prints its id; its output."""
    name = f"pull-{uuid.uuid4().hex[:6]}"
    env.kubectl(cluster, "run", name, f"--image={image}", "--restart=Never",
                "--image-pull-policy=IfNotPresent", "--command", "--", "cat", "/id")
    try:
        def phase() -> bool:
            got = env.kubectl(cluster, "get", "pod", name, "-o",
                              "jsonpath={.status.phase}").stdout
            assert got != "Failed", env.kubectl(cluster, "describe", "pod", name).stdout
            return got == "Succeeded"

        until(phase, 120, every=0.5, what=f"pod {name} of {image} in {cluster} to complete")
        return env.kubectl(cluster, "logs", name).stdout
    finally:
        env.kubectl(cluster, "delete", "pod", name, "--wait=false", check=False)


def test_an_image_pushed_once_is_pulled_in_every_cluster(env: Env, tmp_path: Path) -> None:
    image, marker = _pushed_image(env, tmp_path)
    for cluster in (GLOBAL, "workload-1", "workload-2"):
        assert _run_to_completion(env, cluster, image) == marker, cluster


@contextmanager
def _refused(env: Env, replica: Node, source: str) -> Iterator[None]:
    """The registry replica on `replica` refuses connections from `source`."""
    rule = ["INPUT", "-p", "tcp", "-s", source, "--dport", str(PORT), "-j", "REJECT",
            "--reject-with", "tcp-reset"]
    subprocess.run(["ip", "netns", "exec", replica.netns, "iptables", "-I", *rule], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "netns", "exec", replica.netns, "iptables", "-D", *rule],
                       check=True)


def test_a_node_pulls_on_while_its_first_replica_does_not_answer(
        env: Env, tmp_path: Path) -> None:
    node = env.plan.cluster("workload-1").nodes[0]
    first = env.plan.registry_mirrors(node)[0]
    replica = next(n for n in env.plan.cluster(GLOBAL).nodes if first == f"http://{n.ip}:{PORT}")
    image, marker = _pushed_image(env, tmp_path)
    with _refused(env, replica, node.ip):
        refused = subprocess.run(
            ["ip", "netns", "exec", node.netns, "busybox", "wget", "-q", "-O", "-",
             f"{first}/v2/"], capture_output=True, timeout=10)
        assert refused.returncode != 0  # the replica it tries first is really away
        assert _run_to_completion(env, "workload-1", image) == marker


@pytest.mark.parametrize("cluster", [GLOBAL, "workload-2"])
def test_the_platform_image_came_from_the_registry(env: Env, cluster: str) -> None:
    """Nodes no longer import the platform image: its pods' images were pulled."""
    events = env.kubectl(cluster, "get", "events", "-A", "--field-selector", "reason=Pulled",
                         "-o", "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}").stdout
    assert "Successfully pulled image \"kubeglobe.local/kubeglobe:" in events, events
