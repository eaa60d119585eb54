import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from kubeglobe.local.images import ImageSpec, LayerFile, _layer_tar, render_oci_archive


def _spec() -> ImageSpec:
    return ImageSpec(
        name="kubeglobe.local/x:1",
        files=lambda: [LayerFile(path="bin", directory=True, mode=0o755),
                       LayerFile(path="bin/hello", data=b"hi", mode=0o755),
                       LayerFile(path="bin/sh", symlink="hello")],
        cmd=["/bin/hello"],
    )


def test_archive_is_deterministic_and_named() -> None:
    spec = _spec()
    a = render_oci_archive(spec, _layer_tar(spec.files()))
    b = render_oci_archive(spec, _layer_tar(spec.files()))
    assert a == b
    with tarfile.open(fileobj=io.BytesIO(a)) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        names = tar.getnames()
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "kubeglobe.local/x:1"
    digest = index["manifests"][0]["digest"].split(":")[1]
    assert f"blobs/sha256/{digest}" in names and "oci-layout" in names


def test_layer_holds_files_symlinks_and_modes() -> None:
    layer = _layer_tar(_spec().files())
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        hello = tar.getmember("bin/hello")
        link = tar.getmember("bin/sh")
        assert hello.mode == 0o755 and hello.mtime == 0
        assert link.issym() and link.linkname == "hello"
        assert tar.extractfile("bin/hello").read() == b"hi"  # type: ignore[union-attr]


def test_archives_of_other_builds_go_once_a_day_old_and_never_this_builds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubeglobe.local.images import STALE_SECONDS, remove_stale_archives

    monkeypatch.setenv("KUBEGLOBE_CACHE", str(tmp_path))
    images = tmp_path / "images"
    images.mkdir()
    spec = ImageSpec(name="kubeglobe.local/kube-control-plane:v1.20.2-new", files=list)
    now = 10 * STALE_SECONDS
    files = {name: images / name for name in (
        spec.archive_name, "kubeglobe.local_kube-control-plane_v1.20.2-old.oci.tar",
        "kubeglobe.local_kube-control-plane_v1.20.2-recent.oci.tar",
        "kubeglobe.local_kubeglobe_0.1.0-other-image.oci.tar")}
    for path in files.values():
        path.write_bytes(b"x")
        os.utime(path, (0, 0))  # all of them old
    os.utime(files["kubeglobe.local_kube-control-plane_v1.20.2-recent.oci.tar"],
             (now - 60, now - 60))
    removed = remove_stale_archives(spec, now=now)
    assert [p.name for p in removed] == ["kubeglobe.local_kube-control-plane_v1.20.2-old.oci.tar"]
    assert sorted(p.name for p in images.iterdir()) == sorted(
        n for n in files if n != "kubeglobe.local_kube-control-plane_v1.20.2-old.oci.tar")
