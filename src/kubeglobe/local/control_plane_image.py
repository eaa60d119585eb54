"""The image of global's control-plane static pods (`kubeglobe.local/kube-control-plane`).

kube-controller-manager and kube-scheduler of the cached Kubernetes build at
/usr/local/bin: static Go binaries, so the layer holds nothing else. Its tag is the
Kubernetes version and a hash of the two binaries, so a rebuilt binary is a new name the
nodes import; the archive is written once per build (the layer, 140 MiB, goes through
a file, never whole into memory).
"""

from __future__ import annotations

import hashlib
import tarfile
import time
from pathlib import Path

from kubeglobe.local.binaries import K8S_VERSION, K8sBinaries, cache_dir
from kubeglobe.local.images import ImageSpec, LayerFile, remove_stale_archives, write_archive

NAME = "kubeglobe.local/kube-control-plane"
BINARIES = ("kube-controller-manager", "kube-scheduler")
BIN_DIR = "/usr/local/bin"


def _tag(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return f"{K8S_VERSION}-{digest.hexdigest()[:12]}"


def _write_layer(paths: list[Path], out: Path) -> None:
    """The layer tar: the directories, the two binaries; deterministic (mtime 0, root)."""
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("tmp", "usr", "usr/local", BIN_DIR.lstrip("/")):
            info = tarfile.TarInfo(name)
            info.type, info.mtime = tarfile.DIRTYPE, 0
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        for path in paths:
            info = tarfile.TarInfo(f"{BIN_DIR.lstrip('/')}/{path.name}")
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o755
            with open(path, "rb") as f:
                tar.addfile(info, f)


def _no_files() -> list[LayerFile]:
    return []  # the layer is written by `_write_layer`, not from a list in memory


def control_plane_image(binaries: K8sBinaries) -> tuple[ImageSpec, Path]:
    """The image's spec and its archive in the cache (written if this build has none)."""
    paths = [Path(binaries.path(b)) for b in BINARIES]
    spec = ImageSpec(name=f"{NAME}:{_tag(paths)}", files=_no_files)
    archive = cache_dir() / "images" / spec.archive_name
    if archive.exists():
        return spec, archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_archives(spec, now=time.time())
    layer = archive.with_suffix(".layer.tmp")
    try:
        _write_layer(paths, layer)
        return spec, write_archive(spec, [layer])
    finally:
        layer.unlink(missing_ok=True)
