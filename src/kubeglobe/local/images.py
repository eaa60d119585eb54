"""Container images for a machine with no registry: built here, imported into each node.

An image is an `ImageSpec`: a name, a tag, the files of its single layer and its
command. `build_image` packs it as an OCI image archive (deterministic: same inputs,
same digest) into the cache; `import_images` loads every archive into a node's
containerd (`ctr -n k8s.io images import`), skipping images the node already has.

To add an image, add an `ImageSpec` to `IMAGES` below; every node gets it on the next
`kubeglobe local up`. Pods use it by its full name (for example
`kubeglobe.local/busybox-httpd:1.0`) with `imagePullPolicy: IfNotPresent`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubeglobe.local.binaries import cache_dir

PAUSE_IMAGE = "kubeglobe.local/pause:3.2"
DEMO_IMAGE = "kubeglobe.local/busybox-httpd:1.0"
BUSYBOX = Path("/bin/busybox")
ASSETS = Path(__file__).parent / "assets"


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class LayerFile:
    path: str  # inside the image, no leading slash
    data: bytes = b""
    mode: int = 0o644
    symlink: str | None = None
    directory: bool = False


@dataclass(frozen=True)
class ImageSpec:
    name: str  # full reference, registry host included
    files: Callable[[], list[LayerFile]]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: ["PATH=/bin:/usr/bin"])

    @property
    def archive_name(self) -> str:
        return self.name.replace("/", "_").replace(":", "_") + ".oci.tar"


def _pause_files() -> list[LayerFile]:
    built = cache_dir() / "images" / "pause-bin"
    source = ASSETS / "pause.c"
    if not built.exists() or built.stat().st_mtime < source.stat().st_mtime:
        if shutil.which("gcc") is None:
            raise ImageError("building the pause image needs gcc and libc6-dev; run `make deps`")
        built.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["gcc", "-Os", "-static", "-s", "-o", str(built), str(source)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise ImageError(f"compiling pause failed (needs libc6-dev): {done.stderr.strip()}")
    return [LayerFile(path="pause", data=built.read_bytes(), mode=0o755)]


def _busybox_files() -> list[LayerFile]:
    if not BUSYBOX.exists():
        raise ImageError(f"{BUSYBOX} is missing; install busybox-static (`make deps`)")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = [
        LayerFile(path="bin", directory=True, mode=0o755),
        LayerFile(path="bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
        LayerFile(path="tmp", directory=True, mode=0o1777),
        LayerFile(path="www", directory=True, mode=0o755),
        LayerFile(path="www/index.html", data=b"<h1>KubeGlobe demo</h1>\n"),
        LayerFile(path="etc", directory=True, mode=0o755),
        LayerFile(path="etc/passwd", data=b"root:x:0:0:root:/:/bin/sh\n"),
        LayerFile(path="etc/group", data=b"root:x:0:\n"),
    ]
    names = sorted(set(applets) - {"busybox"})
    files += [LayerFile(path=f"bin/{a}", symlink="busybox") for a in names]
    return files


IMAGES: tuple[ImageSpec, ...] = (
    ImageSpec(name=PAUSE_IMAGE, files=_pause_files, entrypoint=["/pause"]),
    ImageSpec(
        name=DEMO_IMAGE,
        files=_busybox_files,
        cmd=["sh", "-c", "echo serving /www on :8080; exec httpd -f -vv -p 8080 -h /www"],
    ),
)


def _layer_tar(files: list[LayerFile]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(f.path)
            info.mtime = 0
            info.mode = f.mode
            if f.directory:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif f.symlink is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = f.symlink
                info.mode = 0o777
                tar.addfile(info)
            else:
                info.size = len(f.data)
                tar.addfile(info, io.BytesIO(f.data))
    return buf.getvalue()


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


Layer = Path | bytes  # a layer tar in a file (the large base layer), or in memory


def _digest_of(layer: Layer) -> tuple[str, int]:
    if isinstance(layer, bytes):
        return _blob(layer)[0], len(layer)
    with open(layer, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return "sha256:" + digest.hexdigest(), f.tell()


def _metadata(spec: ImageSpec, layers: list[tuple[str, int]]) -> tuple[dict[str, bytes], str]:
    """Config, manifest, index and layout of an image (pure); and the manifest digest."""
    config: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": spec.env, "Entrypoint": spec.entrypoint or None,
                   "Cmd": spec.cmd or None, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest, _ = _blob(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": d, "size": n} for d, n in layers],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest, _ = _blob(manifest_bytes)
    tag = spec.name.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": spec.name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    return {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        f"blobs/sha256/{config_digest[7:]}": config_bytes,
        f"blobs/sha256/{manifest_digest[7:]}": manifest_bytes,
    }, manifest_digest


def _write_tar(out: io.BufferedIOBase | io.BytesIO, spec: ImageSpec, layers: list[Layer]) -> str:
    digests = [_digest_of(layer) for layer in layers]
    small, manifest_digest = _metadata(spec, digests)
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in ("blobs", "blobs/sha256"):
            d = tarfile.TarInfo(name)
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(d)
        for layer, (digest, size) in zip(layers, digests, strict=True):
            info = tarfile.TarInfo(f"blobs/sha256/{digest[7:]}")
            info.size, info.mtime, info.mode = size, 0, 0o644
            with open(layer, "rb") if isinstance(layer, Path) else io.BytesIO(layer) as f:
                tar.addfile(info, f)
        for name, data in small.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return manifest_digest


def render_oci_archive(spec: ImageSpec, layer: bytes) -> bytes:
    """The OCI image layout of a one-layer image, as a tar archive (pure)."""
    buf = io.BytesIO()
    _write_tar(buf, spec, [layer])
    return buf.getvalue()


STALE_SECONDS = 24 * 3600  # an archive of another build this old is removed


def remove_stale_archives(spec: ImageSpec, *, now: float) -> list[Path]:
    """Remove the cached archives of `spec`'s image name under other tags, once a day
    old: another environment on this machine may run another build's image right now
    (a demo beside the test suite, two checkouts), so only old ones go."""
    name = spec.name.rsplit(":", 1)[0].replace("/", "_")
    removed = []
    for stale in (cache_dir() / "images").glob(f"{name}_*.oci.tar"):
        if stale.name != spec.archive_name and now - stale.stat().st_mtime > STALE_SECONDS:
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def write_archive(spec: ImageSpec, layers: list[Layer]) -> Path:
    """Write a (possibly large, multi-layer) image archive into the cache."""
    out = cache_dir() / "images" / spec.archive_name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        _write_tar(f, spec, layers)
    tmp.replace(out)
    return out


def build_image(spec: ImageSpec) -> Path:
    out = cache_dir() / "images" / spec.archive_name
    layer = _layer_tar(spec.files())
    if out.exists() and out.read_bytes() == render_oci_archive(spec, layer):
        return out
    return write_archive(spec, [layer])


def build_all_images() -> list[tuple[ImageSpec, Path]]:
    return [(spec, build_image(spec)) for spec in IMAGES]


def _ctr(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(socket), "--namespace", "k8s.io", *args],
        capture_output=True, text=True, timeout=300,
    )


def node_images(socket: Path) -> dict[str, str]:
    """Image name -> manifest digest, of every image the node has."""
    done = _ctr(socket, "images", "ls")
    if done.returncode != 0:
        raise ImageError(f"listing images on {socket} failed: {done.stderr.strip()}")
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    return {row[0]: row[2] for row in rows if len(row) >= 3}


def archive_digest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        digest: str = json.load(member)["manifests"][0]["digest"]
    return digest


def import_images(*, socket: Path, archives: list[tuple[ImageSpec, Path]]) -> list[str]:
    """Import every archive the node lacks (or has another build of); returns their names."""
    have = node_images(socket)
    imported = []
    for spec, archive in archives:
        if have.get(spec.name) == archive_digest(archive):
            continue
        done = _ctr(socket, "images", "import", "--snapshotter", "overlayfs", str(archive))
        if done.returncode != 0:
            raise ImageError(f"importing {spec.name} into {socket} failed: {done.stderr.strip()}")
        imported.append(spec.name)
    return imported
