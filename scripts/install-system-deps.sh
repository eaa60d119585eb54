#!/usr/bin/env bash
# Installs the Debian packages KubeGlobe's local environment needs: the real parts
# (etcd, containerd, runc, CNI plugins) and the toolchain that builds Kubernetes v1.20.2
# from Debian's own source package. HAProxy 3.0 is built too (`kubeglobe local build`,
# from Debian trixie's source tarball: bookworm's 2.6 lacks reverse HTTP), which needs
# gcc, make, patch (it applies our own changes), libc6-dev, libssl-dev and libpcre2-dev;
# the packaged haproxy stays installed but the environment runs the built one.
# Idempotent: a package that is already installed is not fetched again, and the deb-src
# entry is added once.
set -euo pipefail

PACKAGES=(
  etcd-server etcd-client
  containerd runc containernetworking-plugins
  haproxy
  iproute2 iptables util-linux
  busybox-static gcc make patch libc6-dev libssl-dev libpcre2-dev
  golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev
  debootstrap
  ca-certificates
)

if [ ! -r /etc/debian_version ]; then
  echo "error: KubeGlobe's local environment needs Debian bookworm (apt, Debian's kubernetes source package)." >&2
  echo "fix: run on Debian bookworm, or set KUBEGLOBE_K8S_BIN to a directory holding v1.20.2 binaries and install etcd, containerd, runc, CNI plugins and haproxy yourself." >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: installing system packages needs root (apt-get)." >&2
  echo "fix: run 'sudo make deps' or run as root." >&2
  exit 2
fi

SRC_LIST=/etc/apt/sources.list.d/kubeglobe-deb-src.sources
need_update=0
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  cat >"$SRC_LIST" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$need_update" = 1 ] || [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's docker-registry is the program of the platform registry's image: its package
# is fetched into the cache (never installed: it would start a registry on this host).
DEBS="${KUBEGLOBE_CACHE:-$HOME/.cache/kubeglobe}/debs"
if ! ls "$DEBS"/docker-registry_*.deb >/dev/null 2>&1; then
  mkdir -p "$DEBS"
  if ! (cd "$DEBS" && apt-get download -q docker-registry 2>/dev/null); then
    apt-get update -q  # a machine whose package lists were never fetched
    (cd "$DEBS" && apt-get download -q docker-registry)
  fi
fi
# The packaged services must not run on their own: the project starts its own
# etcd/containerd/haproxy processes with their own state directories.
for svc in etcd containerd haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
echo "system packages: ok"
