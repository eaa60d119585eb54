"""Kubernetes v1.20.2 binaries: found in `$KUBEGLOBE_K8S_BIN`, in the cache, or built.

The build runs the tree's own `make` (GOPATH mode) on Debian's `kubernetes` source
package with the vendored `modern-go/reflect2` v1.0.1 swapped for Debian's v1.0.2 (the
old one makes the apiserver die with `fatal error: fault` under Go >= 1.18), and with
the kubelet's pod log root taken from `$KUBELET_POD_LOGS_DIR` (see POD_LOGS_GO for why).
A finished build is marked complete with its list of source changes, so only a new
change rebuilds; `smoke.py` checks the built apiserver before the build is kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.20.2"
K8S_GIT_COMMIT = "faecb196815e248d3ecfb03c680a4507229c2a56"
COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kubectl",
    "kube-proxy",
)
REFLECT2_SOURCE = Path("/usr/share/gocode/src/github.com/modern-go/reflect2")
MARKER = ".complete"
SOURCE_CHANGES = "reflect2-1.0.2,pod-logs-dir-env"  # in the marker: a new change rebuilds
POD_LOGS_GO = """package kuberuntime

import "os"

// KubeGlobe: several kubelets share one host; each keeps its pods' logs apart, else the
// garbage collection of one deletes the log directories of every other node's pods.
var podLogsRootDirectory = func() string {
	if dir := os.Getenv("KUBELET_POD_LOGS_DIR"); dir != "" {
		return dir
	}
	return defaultPodLogsRootDirectory
}()
"""


class BinariesError(RuntimeError):
    pass


@dataclass(frozen=True)
class K8sBinaries:
    dir: Path

    def path(self, component: str) -> str:
        return str(self.dir / component)


def cache_dir() -> Path:
    return Path(os.environ.get("KUBEGLOBE_CACHE", Path.home() / ".cache" / "kubeglobe"))


def _bin_cache() -> Path:
    return cache_dir() / "k8s" / K8S_VERSION / "bin"


def _version_of(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    return (done.stdout + done.stderr).strip()


def _check_dir(path: Path, *, origin: str) -> K8sBinaries:
    missing = [c for c in COMPONENTS if not os.access(path / c, os.X_OK)]
    if missing:
        raise BinariesError(
            f"{origin} {path} lacks {', '.join(missing)}; put executable Kubernetes "
            f"{K8S_VERSION} binaries there or unset it to build them from Debian's source"
        )
    version = _version_of(path / "kube-apiserver")
    if K8S_VERSION not in version:
        raise BinariesError(
            f"{origin} {path}/kube-apiserver reports {version!r}, KubeGlobe needs {K8S_VERSION}"
        )
    return K8sBinaries(dir=path)


def find_binaries() -> K8sBinaries | None:
    """The binaries to use, or None if they still have to be built."""
    override = os.environ.get("KUBEGLOBE_K8S_BIN")
    if override:
        return _check_dir(Path(override), origin="KUBEGLOBE_K8S_BIN")
    cached = _bin_cache()
    if (cached / MARKER).exists() and (cached / MARKER).read_text() == _marker_text():
        return _check_dir(cached, origin="cached build")
    return None


def _require_build_tools() -> None:
    if not Path("/etc/debian_version").exists():
        raise BinariesError(
            "building Kubernetes needs a Debian bookworm machine (Debian's kubernetes source "
            "package); elsewhere set KUBEGLOBE_K8S_BIN to a directory of v1.20.2 binaries"
        )
    missing = [t for t in ("apt-get", "dpkg-source", "go", "rsync", "make") if not shutil.which(t)]
    if not REFLECT2_SOURCE.exists():
        missing.append("golang-github-modern-go-reflect2-dev")
    if missing:
        raise BinariesError(
            f"cannot build Kubernetes: missing {', '.join(missing)}; run `make deps` "
            "(it installs golang-go, rsync, dpkg-dev and golang-github-modern-go-reflect2-dev)"
        )


Progress = Callable[[str], None]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path, progress: Progress) -> None:
    """Run a build step, feeding each line of output to `progress` and to the log."""
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            stripped = line.strip()
            if stripped:
                progress(stripped)
        code = proc.wait()
    if code != 0:
        raise BinariesError(f"`{' '.join(argv)}` failed with exit code {code}; see {log}")


def _source_tree(work: Path, *, env: dict[str, str], log: Path, progress: Progress) -> Path:
    trees = sorted(p for p in work.glob("kubernetes-*") if p.is_dir())
    if trees and (trees[-1] / ".kubeglobe-extracted").exists():
        return trees[-1]
    for stale in trees:
        shutil.rmtree(stale)
    progress("fetching Debian's kubernetes source package")
    _run(["apt-get", "source", "kubernetes"], cwd=work, env=env, log=log, progress=progress)
    trees = sorted(p for p in work.glob("kubernetes-*") if p.is_dir())
    if not trees:
        raise BinariesError(f"apt-get source kubernetes produced no source tree in {work}")
    tree = trees[-1]
    if not (tree / "vendor" / "github.com" / "modern-go" / "reflect2").exists():
        raise BinariesError(f"{tree} has no vendored reflect2; is this the 1.20 source package?")
    (tree / ".kubeglobe-extracted").touch()
    return tree


def _marker_text() -> str:
    return f"{K8S_VERSION} {SOURCE_CHANGES}\n"


def _patch_pod_logs_dir(tree: Path) -> None:
    runtime = tree / "pkg" / "kubelet" / "kuberuntime"
    manager = runtime / "kuberuntime_manager.go"
    text = manager.read_text()
    const = '\tpodLogsRootDirectory = "/var/log/pods"'
    if const not in text:
        raise BinariesError(f"{manager} does not define podLogsRootDirectory as expected; "
                            "is this the 1.20 source package?")
    manager.write_text(text.replace(const, '\tdefaultPodLogsRootDirectory = "/var/log/pods"'))
    (runtime / "kubeglobe_pod_logs.go").write_text(POD_LOGS_GO)


def build_binaries(*, progress: Progress,
                   check: Callable[[K8sBinaries, Progress], None]) -> K8sBinaries:
    """Build the Kubernetes binaries into the cache (minutes; the result is kept once
    `check`, e.g. `smoke.smoke_test`, passed on it; cached binaries passed it already)."""
    found = find_binaries()
    if found is not None:
        return found
    _require_build_tools()
    work = cache_dir() / "k8s" / "build"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    tree = _source_tree(work, env=env, log=log, progress=progress)

    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    shutil.rmtree(vendored)
    shutil.copytree(REFLECT2_SOURCE, vendored, symlinks=False)
    _patch_pod_logs_dir(tree)
    gopath_link = tree / ".go" / "src" / "k8s.io" / "kubernetes"
    gopath_link.parent.mkdir(parents=True, exist_ok=True)
    if not gopath_link.is_symlink():
        gopath_link.symlink_to("../../..")
    version_file = work / "version.env"
    version_file.write_text(
        f"KUBE_GIT_COMMIT='{K8S_GIT_COMMIT}'\nKUBE_GIT_TREE_STATE='archive'\n"
        f"KUBE_GIT_VERSION='{K8S_VERSION}'\nKUBE_GIT_MAJOR='1'\nKUBE_GIT_MINOR='20'\n"
    )
    build_env = {
        **env,
        "GOPATH": str(tree / ".go"),
        "CGO_ENABLED": "0",
        "KUBE_GIT_VERSION_FILE": str(version_file),
        "GOFLAGS": "",
    }
    what = " ".join(f"cmd/{c}" for c in COMPONENTS)
    started = time.monotonic()
    _run(["make", f"WHAT={what}"], cwd=tree, env=build_env, log=log, progress=progress)
    progress(f"compiled in {time.monotonic() - started:.0f}s")

    out = _bin_cache()
    out.mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        built = tree / "_output" / "bin" / component
        if not built.exists():
            raise BinariesError(f"the build did not produce {component}; see {log}")
        shutil.copy2(built, out / component)
    binaries = _check_dir(out, origin="fresh build")
    check(binaries, progress)
    (out / MARKER).write_text(_marker_text())
    shutil.rmtree(tree)
    return binaries
