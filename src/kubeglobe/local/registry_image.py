"""The registry's image (`kubeglobe.local/registry`): Debian's docker-registry, built here.

Its binary comes from bookworm's `docker-registry` package, fetched once into the cache
with `apt-get download` (never installed: the package would start a registry on the
host), with the two libraries it links (libc and the loader) from this Debian machine
and a configuration that serves /var/lib/registry on port 5000 with no auth (the node
network is the environment's own). Its tag carries the package version and a hash of
the layer, so a changed build is a new name that nodes import.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

from kubeglobe.local.binaries import cache_dir
from kubeglobe.local.images import ImageError, ImageSpec, LayerFile, _layer_tar
from kubeglobe.registry.manifests import IMAGE_PREFIX, PORT, STORAGE

PACKAGE = "docker-registry"
BINARY = "usr/bin/docker-registry"
CONFIG = "etc/docker/registry/config.yml"
LIBRARIES = ("lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
LOADER_LINK = ("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
REGISTRY_CONFIG = f"""version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: {STORAGE}
  delete:
    enabled: true
http:
  addr: :{PORT}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def _package() -> Path:
    """The package file in the cache (downloaded from Debian the first time)."""
    debs = cache_dir() / "debs"
    found = sorted(debs.glob(f"{PACKAGE}_*.deb"))
    if found:
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["apt-get", "download", PACKAGE], cwd=debs, capture_output=True,
                          text=True, timeout=300)
    found = sorted(debs.glob(f"{PACKAGE}_*.deb"))
    if done.returncode != 0 or not found:
        raise ImageError(f"downloading Debian's {PACKAGE} package failed "
                         f"({done.stderr.strip()[-500:]}); run `make deps` (it updates "
                         "apt's package lists) and check that deb.debian.org is reachable")
    return found[-1]


def _binary(deb: Path) -> bytes:
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as unpack:
        assert unpack.stdout is not None
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as tar:
            for member in tar:
                if member.name == f"./{BINARY}" and (f := tar.extractfile(member)):
                    return f.read()
    raise ImageError(f"{deb.name} holds no {BINARY}; remove it from {deb.parent} and "
                     "run `kubeglobe local up` again")


def _files(binary: bytes) -> list[LayerFile]:
    dirs = ("usr", "usr/bin", "lib", "lib/x86_64-linux-gnu", "lib64", "etc", "etc/docker",
            "etc/docker/registry", "var", "var/lib", STORAGE.lstrip("/"))
    files = [LayerFile(path=d, directory=True, mode=0o755) for d in dirs]
    files.append(LayerFile(path="tmp", directory=True, mode=0o1777))
    files.append(LayerFile(path=BINARY, data=binary, mode=0o755))
    for library in LIBRARIES:
        files.append(LayerFile(path=library, data=(Path("/") / library).read_bytes(),
                               mode=0o755))
    files.append(LayerFile(path=LOADER_LINK[0], symlink=LOADER_LINK[1]))
    files.append(LayerFile(path=CONFIG, data=REGISTRY_CONFIG.encode()))
    return files


def registry_binary() -> bytes:
    """The docker-registry program of Debian's package (fetched into the cache once)."""
    return _binary(_package())


def registry_image() -> ImageSpec:
    deb = _package()
    version = deb.name.split("_")[1].replace("+", "-").replace("~", "-")
    files = _files(_binary(deb))
    tag = hashlib.sha256(_layer_tar(files)).hexdigest()[:12]
    return ImageSpec(name=f"{IMAGE_PREFIX}/registry:{version}-{tag}", files=lambda: files,
                     cmd=[f"/{BINARY}", "serve", f"/{CONFIG}"])
