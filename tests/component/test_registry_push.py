"""Pushing the platform's images to Debian's docker-registry, run here on loopback."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubeglobe.local.images import DEMO_IMAGE, IMAGES, build_image
from kubeglobe.local.registry_image import REGISTRY_CONFIG, registry_binary
from kubeglobe.registry.push import MANIFEST_TYPE, PushError, push_archive
from tests.component.conftest import free_port


@contextlib.contextmanager
def _serving(tmp_path: Path, *, readonly: bool = False) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, stopped (by its PID) after."""
    program = tmp_path / "docker-registry"
    program.write_bytes(registry_binary())
    program.chmod(0o755)
    port = free_port()
    config = tmp_path / "config.yml"
    text = (REGISTRY_CONFIG.replace("/var/lib/registry", str(tmp_path / "storage"))
            .replace("addr: :5000", f"addr: 127.0.0.1:{port}"))
    if readonly:
        text = text.replace("  delete:\n", "  maintenance:\n    readonly:\n"
                            "      enabled: true\n  delete:\n")
    config.write_text(text)
    with open(tmp_path / "registry.log", "wb") as log:
        running = subprocess.Popen([str(program), "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/v2/", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        running.terminate()
        running.wait(10)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with _serving(tmp_path) as url:
        yield url


def _demo_archive() -> Path:
    return build_image(next(s for s in IMAGES if s.name == DEMO_IMAGE))


def test_an_image_is_pushed_once_and_served_as_built(registry: str) -> None:
    archive = _demo_archive()
    with tarfile.open(archive) as tar:
        f = tar.extractfile("index.json")
        assert f is not None
        built = json.load(f)["manifests"][0]["digest"]
    with httpx.Client(trust_env=False, timeout=30) as client:
        first = push_archive(archive, registry=registry, client=client)
        assert first.digest == built
        assert first.blobs_sent == 2  # its config and its one layer
        assert first.bytes_sent > 1_000_000  # busybox is in the layer
        again = push_archive(archive, registry=registry, client=client)
        assert (again.blobs_sent, again.bytes_sent) == (0, 0)
        served = client.get(f"{registry}/v2/busybox-httpd/manifests/1.0",
                            headers={"Accept": MANIFEST_TYPE})
        assert served.status_code == 200
        assert served.headers["docker-content-digest"] == built
        layer = json.loads(served.content)["layers"][0]
        blob = client.head(f"{registry}/v2/busybox-httpd/blobs/{layer['digest']}")
        assert int(blob.headers["content-length"]) == layer["size"]


def test_a_registry_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    unused = f"http://127.0.0.1:{free_port()}"
    with httpx.Client(trust_env=False, timeout=5) as client, pytest.raises(httpx.ConnectError):
        push_archive(_demo_archive(), registry=unused, client=client)


def test_an_image_of_another_registry_is_refused(tmp_path: Path, registry: str) -> None:
    archive = tmp_path / "other.tar"
    with tarfile.open(_demo_archive()) as src, tarfile.open(archive, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name == "index.json" and data is not None:
                index = json.load(data)
                index["manifests"][0]["annotations"]["io.containerd.image.name"] = "docker.io/x:1"
                raw = json.dumps(index).encode()
                member.size = len(raw)
                out.addfile(member, io.BytesIO(raw))
                continue
            out.addfile(member, data)
    with (httpx.Client(trust_env=False, timeout=5) as client,
          pytest.raises(ValueError, match=r"name it kubeglobe\.local/NAME:TAG")):
        push_archive(archive, registry=registry, client=client)


def test_a_registry_that_refuses_the_upload_is_named_with_its_answer(tmp_path: Path) -> None:
    with (_serving(tmp_path, readonly=True) as url, httpx.Client(trust_env=False) as client,
          pytest.raises(PushError, match=r"starting the upload of sha256:\w+: the registry "
                                         r"answered 405")):
        push_archive(_demo_archive(), registry=url, client=client)
