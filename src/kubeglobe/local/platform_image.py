"""The platform's own container image (`kubeglobe.local/kubeglobe`), built locally.

Three layers. The base: a Debian bookworm root filesystem (debootstrap, minbase, with
python3) plus the pinned runtime dependencies, cached by the hash of what goes into it,
so it is built once per dependency change. HAProxy: the 3.0 binary built into the cache
(`haproxy_build.py`) at /usr/local/sbin/haproxy, for the agent; the base already holds
every library it links (libc, libcrypt1, libssl3). The app: this package's source,
rebuilt in a second from the working tree. Every node imports the result like any other
image.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from kubeglobe import __version__
from kubeglobe.api.meta import PLATFORM_IMAGE
from kubeglobe.local.binaries import cache_dir
from kubeglobe.local.haproxy_build import build_haproxy
from kubeglobe.local.images import (
    ImageError,
    ImageSpec,
    LayerFile,
    _layer_tar,
    remove_stale_archives,
    write_archive,
)
from kubeglobe.local.mounts import unmount_below

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "ca-certificates")
SITE = "opt/kubeglobe/lib"
HAPROXY_PATH = "usr/local/sbin/haproxy"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/kubeglobe
PROJECT_DIR = PACKAGE_DIR.parents[1]
ENTRYPOINT = (
    "#!/usr/bin/python3\n"
    "import sys\n"
    f"sys.path.insert(0, '/{SITE}')\n"
    "from kubeglobe.cli.launcher import main\n"
    "main()\n"
)


def _runtime_requirements() -> list[str]:
    meta = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    deps: list[str] = meta["project"]["dependencies"]
    return deps


def _base_key() -> str:
    digest = hashlib.sha256()
    digest.update((PROJECT_DIR / "constraints.txt").read_bytes())
    digest.update(repr((SUITE, BASE_PACKAGES, _runtime_requirements())).encode())
    return digest.hexdigest()[:16]


def _run(argv: list[str], *, what: str, progress: Callable[[str], None]) -> None:
    progress(what)
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"{what} failed: {done.stderr.strip()[-2000:]}")


def _build_base(out: Path, progress: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError("building the platform image needs debootstrap; run `make deps`")
    rootfs = out.with_suffix(".rootfs")
    if rootfs.exists():
        unmount_below(rootfs)
        shutil.rmtree(rootfs)
    try:
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
              SUITE, str(rootfs), MIRROR],
             what="platform image: debootstrap bookworm (a few minutes, once)",
             progress=progress)
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-compile", "--target", str(rootfs / SITE), "-c",
              str(PROJECT_DIR / "constraints.txt"), *_runtime_requirements()],
             what="platform image: installing pinned dependencies", progress=progress)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale"):
            path = rootfs / junk
            if path.exists():
                shutil.rmtree(path)
                path.mkdir(parents=True)
        progress("platform image: packing the base layer")
        tmp = out.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            for entry in sorted(rootfs.iterdir()):
                if entry.name in ("proc", "sys", "dev"):
                    info = tarfile.TarInfo(entry.name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                tar.add(entry, arcname=entry.name)
        tmp.replace(out)
    finally:
        if rootfs.exists():
            unmount_below(rootfs)
            shutil.rmtree(rootfs, ignore_errors=True)


def _app_files() -> list[LayerFile]:
    files = [LayerFile(path="usr/local/bin/kubeglobe", data=ENTRYPOINT.encode(), mode=0o755)]
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        rel = path.relative_to(PACKAGE_DIR.parent)
        files.append(LayerFile(path=f"{SITE}/{rel}", data=path.read_bytes()))
    dirs = {str(Path(f.path).parent) for f in files}
    parents = {str(p) for d in dirs for p in Path(d).parents if str(p) != "."} | dirs
    return [LayerFile(path=d, directory=True, mode=0o755) for d in sorted(parents)] + files


def _haproxy_files(binary: Path) -> list[LayerFile]:
    dirs = [LayerFile(path=d, directory=True, mode=0o755)
            for d in ("usr", "usr/local", "usr/local/sbin")]
    return [*dirs, LayerFile(path=HAPROXY_PATH, data=binary.read_bytes(), mode=0o755)]


def build_platform_image(*, progress: Callable[[str], None]) -> tuple[ImageSpec, Path]:
    """The platform image as an OCI archive in the cache (base built once, app each time).

    Its tag carries a hash of its content, so a changed build is a new image name that
    nodes import and Deployments roll out to.
    """
    images = cache_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    base = images / f"platform-base-{_base_key()}.tar"
    if not base.exists():
        for stale in images.glob("platform-base-*.tar"):
            stale.unlink()
        _build_base(base, progress)
    haproxy_layer = _layer_tar(_haproxy_files(build_haproxy(progress=progress)))
    app_layer = _layer_tar(_app_files())
    digest = hashlib.sha256(base.name.encode())
    for layer in (haproxy_layer, app_layer):
        digest.update(hashlib.sha256(layer).digest())
    tag = digest.hexdigest()[:12]
    spec = ImageSpec(name=f"{PLATFORM_IMAGE}:{__version__}-{tag}", files=list,
                     env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin",
                          f"PYTHONPATH=/{SITE}"],
                     cmd=["kubeglobe", "--help"])
    out = cache_dir() / "images" / spec.archive_name
    if not out.exists():
        remove_stale_archives(spec, now=time.time())
        out = write_archive(spec, [base, haproxy_layer, app_layer])
    return spec, out
