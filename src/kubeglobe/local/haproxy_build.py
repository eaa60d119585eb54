"""HAProxy 3.0.11: built from the source tarball Debian trixie ships, kept in the cache.

Why: the gateway needs reverse HTTP (`rhttp@` servers, experimental in 3.0), which
bookworm's HAProxy 2.6 lacks. The tarball is pinned by sha256 (a changed or corrupt file
is refused before anything runs), patched with `haproxy_patches/` in name order (each
file says what it changes and why) and compiled with the host's gcc, OpenSSL 3.0 and
PCRE2 (the gateway's rules use PCRE's `(?i)`, which libc's regex lacks). The binary is
cached per version, build options and patches; the load balancer runs it from there and
the platform image copies it. Nothing is installed outside the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from kubeglobe.haproxy import program_version
from kubeglobe.local.binaries import cache_dir

HAPROXY_VERSION = "3.0.11"
HAPROXY_SOURCE_URL = (
    f"http://deb.debian.org/debian/pool/main/h/haproxy/haproxy_{HAPROXY_VERSION}.orig.tar.gz"
)
HAPROXY_SOURCE_SHA256 = "a133e2d550c5fd9a849b5c7ab17bb945bcdad209ca140d41f45ebf31943ae783"
MAKE_OPTIONS = ("TARGET=linux-glibc", "USE_OPENSSL=1", "USE_PCRE2=1", "USE_PCRE2_JIT=1")
OPENSSL_HEADER = Path("/usr/include/openssl/ssl.h")
PCRE2_HEADER = Path("/usr/include/pcre2.h")
PATCHES = tuple(sorted((Path(__file__).parent / "haproxy_patches").glob("*.patch")))
BUILD_PACKAGES = "gcc, make, patch, libc6-dev, libssl-dev and libpcre2-dev"
LOG_TAIL_LINES = 20

Progress = Callable[[str], None]
Download = Callable[[str, Path], None]  # (url, file to write): the network, replaceable in tests


class HaproxyBuildError(RuntimeError):
    pass


def _home() -> Path:
    """Per version, build options and patches: a binary built another way is another."""
    flavour = hashlib.sha256(" ".join(MAKE_OPTIONS).encode())
    for patch in PATCHES:
        flavour.update(patch.read_bytes())
    return cache_dir() / "haproxy" / f"{HAPROXY_VERSION}-{flavour.hexdigest()[:8]}"


def haproxy_binary() -> Path:
    """Where the built binary lives (whether or not it has been built yet)."""
    return _home() / "haproxy"


def _reports_version(binary: Path) -> bool:
    return program_version(binary) == tuple(int(p) for p in HAPROXY_VERSION.split("."))


def find_haproxy() -> Path | None:
    """The cached HAProxy binary if it is there and reports the pinned version, else None."""
    binary = haproxy_binary()
    if os.access(binary, os.X_OK) and _reports_version(binary):
        return binary
    return None


def require_haproxy() -> Path:
    """The cached HAProxy binary; a clear error if it still has to be built."""
    found = find_haproxy()
    if found is None:
        raise HaproxyBuildError(
            f"HAProxy {HAPROXY_VERSION} is not built yet (no working {haproxy_binary()}); "
            "run `kubeglobe local build` (or `make k8s`)"
        )
    return found


def _require_build_tools() -> None:
    missing = [tool for tool in ("gcc", "make", "patch") if shutil.which(tool) is None]
    if not OPENSSL_HEADER.exists():
        missing.append(f"the OpenSSL headers ({OPENSSL_HEADER})")
    if not PCRE2_HEADER.exists():
        missing.append(f"the PCRE2 headers ({PCRE2_HEADER})")
    if missing:
        raise HaproxyBuildError(
            f"cannot build HAProxy {HAPROXY_VERSION}: missing {', '.join(missing)}; "
            f"run `make deps` (it installs {BUILD_PACKAGES})"
        )


def _download(url: str, dest: Path) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            response.raise_for_status()
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
    except httpx.HTTPError as e:
        raise HaproxyBuildError(
            f"downloading {url} failed: {e}; check that deb.debian.org is reachable "
            "(or set HTTP_PROXY) and run `kubeglobe local build` again"
        ) from None


def _verify(source: Path) -> None:
    with open(source, "rb") as f:
        got = hashlib.file_digest(f, "sha256").hexdigest()
    if got != HAPROXY_SOURCE_SHA256:
        raise HaproxyBuildError(
            f"{HAPROXY_SOURCE_URL} has sha256 {got} ({source.stat().st_size} bytes), expected "
            f"{HAPROXY_SOURCE_SHA256}: the download is damaged or something between here and "
            "deb.debian.org serves another file; nothing was built. Run `kubeglobe local build` "
            "again; if it persists, check the proxy or mirror"
        )


def _extract(source: Path, work: Path) -> Path:
    with tarfile.open(source) as tar:
        tar.extractall(work, filter="data")
    tree = work / f"haproxy-{HAPROXY_VERSION}"
    if not (tree / "Makefile").is_file():
        raise HaproxyBuildError(f"{HAPROXY_SOURCE_URL} did not unpack to {tree.name}/Makefile")
    return tree


def _patch(tree: Path, *, log: Path, progress: Progress) -> None:
    """Apply our patches to the unpacked tree, each whole or the build stops."""
    with open(log, "w") as out:
        for patch in PATCHES:
            progress(f"patching: {patch.name}")
            argv = ["patch", "-p1", "--batch", "--forward", "-i", str(patch)]
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            done = subprocess.run(argv, cwd=tree, stdout=out, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                raise HaproxyBuildError(
                    f"the patch {patch} does not apply to HAProxy {HAPROXY_VERSION} "
                    f"(`patch` exited with {done.returncode}); the end of {log}:\n"
                    + "\n".join(tail) + "\nThe patch was written for another HAProxy "
                    "version: bring it up to date with HAPROXY_VERSION, or remove it")


def _make(tree: Path, *, log: Path, progress: Progress) -> None:
    """Run HAProxy's own Makefile, every line to the log and to `progress`."""
    argv = ["make", f"-j{os.cpu_count() or 1}", *MAKE_OPTIONS]
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, cwd=tree, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.strip():
                progress(line.strip())
        code = proc.wait()
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise HaproxyBuildError(
            f"building HAProxy {HAPROXY_VERSION} failed (`{' '.join(argv)}` exited with {code}); "
            f"the end of {log}:\n" + "\n".join(tail) + "\n"
            f"A missing header or compiler? `make deps` installs {BUILD_PACKAGES}"
        )


def _install(built: Path) -> Path:
    """Put the binary in place whole: a copy that is checked, then renamed over the old."""
    if not built.is_file():
        raise HaproxyBuildError(f"make finished but produced no {built}")
    dest = haproxy_binary()
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(built, tmp)
    tmp.chmod(0o755)
    if not _reports_version(tmp):
        tmp.unlink()
        raise HaproxyBuildError(f"the built {built} does not report HAProxy {HAPROXY_VERSION}")
    os.replace(tmp, dest)
    return dest


def build_haproxy(*, progress: Progress, download: Download | None = None) -> Path:
    """Build HAProxy into the cache (under a minute; the result is kept) and return its path.

    `download` fetches the source tarball to a file; None means over HTTP (tests pass one).
    """
    found = find_haproxy()
    if found is not None:
        return found
    _require_build_tools()
    home = _home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build finishes first; then reuse it
        found = find_haproxy()
        if found is not None:
            return found
        work = home / "build"
        shutil.rmtree(work, ignore_errors=True)  # a build that was killed midway
        work.mkdir()
        try:
            source = work / f"haproxy_{HAPROXY_VERSION}.orig.tar.gz"
            progress(f"downloading {HAPROXY_SOURCE_URL}")
            (download or _download)(HAPROXY_SOURCE_URL, source)
            progress("verifying its sha256")
            _verify(source)
            progress("unpacking")
            tree = _extract(source, work)
            _patch(tree, log=home / "build.log", progress=progress)
            started = time.monotonic()
            _make(tree, log=home / "build.log", progress=progress)
            progress(f"compiled in {time.monotonic() - started:.0f}s")
            return _install(tree / "haproxy")
        finally:
            shutil.rmtree(work, ignore_errors=True)
