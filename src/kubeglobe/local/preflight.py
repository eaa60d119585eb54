"""Checks that this machine can run a local environment, before anything starts.

Each missing program is named with the Debian package that provides it, so the error
says exactly what to install (`make deps` installs them all). HAProxy is the exception:
bookworm's 2.6 is too old, so it is built into the cache and named with `make k8s`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kubeglobe.local.haproxy_build import HAPROXY_VERSION, find_haproxy, haproxy_binary

PROGRAMS = {
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "nsenter": "util-linux",
    "umount": "mount",
    "ip": "iproute2",
    "iptables": "iptables",
}
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
CNI_DIR = Path("/usr/lib/cni")


class PreflightError(RuntimeError):
    pass


def missing_requirements() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network namespaces, mounts and containers need it): run as root")
    packages: dict[str, list[str]] = {}
    for program, package in PROGRAMS.items():
        if shutil.which(program) is None:
            packages.setdefault(package, []).append(program)
    missing_cni = [p for p in CNI_PLUGINS if not (CNI_DIR / p).exists()]
    if missing_cni:
        packages.setdefault("containernetworking-plugins", []).extend(
            f"{CNI_DIR}/{p}" for p in missing_cni)
    for package, programs in packages.items():
        problems.append(f"{', '.join(programs)} (Debian package {package})")
    if find_haproxy() is None:
        problems.append(f"{haproxy_binary()} (HAProxy {HAPROXY_VERSION}, built from Debian "
                        "trixie's source by `make k8s` or `kubeglobe local build`)")
    return problems


def preflight() -> None:
    problems = missing_requirements()
    if problems:
        raise PreflightError(
            "this machine cannot run the local environment yet; missing: "
            + "; ".join(problems) + ". `make deps` installs the packages."
        )
