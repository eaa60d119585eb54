import io
import json
import tarfile

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
