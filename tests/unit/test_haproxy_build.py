"""The HAProxy build's own logic, with a local stand-in for the tarball: no network, no gcc.

The stand-in source tree's Makefile writes a shell script that reports a version, so
download, checksum, unpack, make, install and reuse all run for real in a second.
"""

import hashlib
import shutil
import tarfile
from pathlib import Path

import pytest

from kubeglobe.local import haproxy_build
from kubeglobe.local.haproxy_build import (
    HAPROXY_SOURCE_SHA256,
    HAPROXY_SOURCE_URL,
    HAPROXY_VERSION,
    HaproxyBuildError,
    build_haproxy,
    find_haproxy,
    haproxy_binary,
    require_haproxy,
)

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBEGLOBE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_haproxy(path: Path, version: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "HAProxy version {version} 2025/06/02"\n')
    path.chmod(0o755)


def _source_tarball(tmp_path: Path, makefile: str, **files: str) -> Path:
    tree = tmp_path / "src" / f"haproxy-{HAPROXY_VERSION}"
    tree.mkdir(parents=True)
    (tree / "Makefile").write_text(makefile)
    for name, text in files.items():
        (tree / name).write_text(text)
    archive = tmp_path / "source.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    return archive


def _serving(archive: Path, fetched: list[str]) -> haproxy_build.Download:
    def download(url: str, dest: Path) -> None:
        fetched.append(url)
        shutil.copyfile(archive, dest)
    return download


def _refuse(url: str, dest: Path) -> None:
    raise AssertionError(f"downloaded {url} although nothing should be fetched")


def _pin_source(monkeypatch: pytest.MonkeyPatch, archive: Path,
                patches: tuple[Path, ...] = ()) -> None:
    monkeypatch.setattr(haproxy_build, "HAPROXY_SOURCE_SHA256",
                        hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(haproxy_build, "_require_build_tools", lambda: None)
    monkeypatch.setattr(haproxy_build, "PATCHES", patches)


def _patch_file(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A unified diff changing note.txt's one line from `old` to `new`."""
    path = tmp_path / name
    path.write_text(f"What this changes.\n\n--- a/note.txt\n+++ b/note.txt\n"
                    f"@@ -1 +1 @@\n-{old}\n+{new}\n")
    return path


def test_the_project_carries_its_haproxy_patches_into_the_cache_key(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [p.name for p in haproxy_build.PATCHES] == ["h2-coalesce-window-updates.patch"]
    assert "+++ b/src/mux_h2.c" in haproxy_build.PATCHES[0].read_text()
    stock = haproxy_binary()
    monkeypatch.setattr(haproxy_build, "PATCHES", (
        _patch_file(tmp_path, "one.patch", "stock", "patched"),))
    assert haproxy_binary() != stock  # another patch set builds another binary


def test_nothing_is_found_in_an_empty_cache(cache: Path) -> None:
    assert haproxy_binary().parent.parent == cache / "haproxy"
    assert haproxy_binary().parent.name.startswith(f"{HAPROXY_VERSION}-")
    assert find_haproxy() is None
    with pytest.raises(HaproxyBuildError, match="kubeglobe local build"):
        require_haproxy()


@pytest.mark.parametrize("version", ["2.6.12-1+deb12u2", "3.0.110", "3.0.1"])
def test_a_cached_binary_of_another_version_is_not_used(cache: Path, version: str) -> None:
    _fake_haproxy(haproxy_binary(), version)
    assert find_haproxy() is None


def test_a_cached_binary_of_the_pinned_version_is_used(cache: Path) -> None:
    _fake_haproxy(haproxy_binary(), f"{HAPROXY_VERSION}-9e587df")
    assert find_haproxy() == haproxy_binary()
    assert require_haproxy() == haproxy_binary()
    assert build_haproxy(progress=print, download=_refuse) == haproxy_binary()


def test_missing_build_tools_name_make_deps_before_any_download(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(haproxy_build, "OPENSSL_HEADER", tmp_path / "openssl" / "ssl.h")
    with pytest.raises(HaproxyBuildError) as refused:
        build_haproxy(progress=print, download=_refuse)
    message = str(refused.value)
    assert "make deps" in message and "libssl-dev" in message
    assert str(tmp_path / "openssl" / "ssl.h") in message


def test_a_source_with_another_checksum_is_refused_before_building(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(haproxy_build, "_require_build_tools", lambda: None)
    archive = _source_tarball(tmp_path, "all:\n\ttouch made\n")
    got = hashlib.sha256(archive.read_bytes()).hexdigest()
    fetched: list[str] = []
    with pytest.raises(HaproxyBuildError) as refused:
        build_haproxy(progress=print, download=_serving(archive, fetched))
    message = str(refused.value)
    assert fetched == [HAPROXY_SOURCE_URL]
    assert f"sha256 {got}" in message and f"expected {HAPROXY_SOURCE_SHA256}" in message
    assert "kubeglobe local build" in message
    home = haproxy_binary().parent
    assert not (home / "build.log").exists()  # make never ran
    assert not (home / "build").exists()
    assert find_haproxy() is None


@needs_make
def test_a_verified_source_is_built_installed_whole_and_then_reused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = f"#!/bin/sh\\necho 'HAProxy version {HAPROXY_VERSION}-test'\\n"
    archive = _source_tarball(  # make fails unless the patch was applied first
        tmp_path, f"all:\n\tgrep -qx patched note.txt\n\tprintf \"{script}\" > haproxy\n"
                  "\tchmod 700 haproxy\n", **{"note.txt": "stock\n"})
    _pin_source(monkeypatch, archive, (_patch_file(tmp_path, "1.patch", "stock", "patched"),))
    fetched: list[str] = []
    lines: list[str] = []
    built = build_haproxy(progress=lines.append, download=_serving(archive, fetched))
    assert built == haproxy_binary() == find_haproxy()
    assert built.stat().st_mode & 0o777 == 0o755
    assert fetched == [HAPROXY_SOURCE_URL]
    assert any("printf" in line for line in lines)  # make's output reaches progress
    assert "patching: 1.patch" in lines
    assert sorted(p.name for p in built.parent.iterdir()) == [".build.lock", "build.log",
                                                              "haproxy"]
    assert build_haproxy(progress=print, download=_refuse) == built


@needs_make
def test_a_failing_build_reports_the_end_of_its_log_and_installs_nothing(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _source_tarball(tmp_path, (
        "all:\n\t@echo compiling src/ssl_sock.c\n"
        "\t@echo 'src/ssl_sock.c:1: fatal error: openssl/ssl.h: No such file'\n\t@exit 2\n"))
    _pin_source(monkeypatch, archive)
    with pytest.raises(HaproxyBuildError) as failed:
        build_haproxy(progress=print, download=_serving(archive, []))
    message = str(failed.value)
    assert "fatal error: openssl/ssl.h: No such file" in message
    assert "make deps" in message and "libssl-dev" in message
    assert not haproxy_binary().exists()
    assert not (haproxy_binary().parent / "build").exists()


@needs_make
def test_a_patch_that_does_not_apply_stops_the_build_and_names_itself(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _source_tarball(tmp_path, "all:\n\ttouch haproxy\n",
                              **{"note.txt": "another release\n"})
    stale = _patch_file(tmp_path, "stale.patch", "stock", "patched")
    _pin_source(monkeypatch, archive, (stale,))
    with pytest.raises(HaproxyBuildError) as refused:
        build_haproxy(progress=print, download=_serving(archive, []))
    message = str(refused.value)
    assert f"the patch {stale} does not apply to HAProxy {HAPROXY_VERSION}" in message
    assert "hunk" in message.lower()  # patch's own words, from the log
    assert "bring it up to date" in message
    assert not haproxy_binary().exists()
    assert "touch haproxy" not in (haproxy_binary().parent / "build.log").read_text()
