"""Nodes as hosts of their own: network namespaces, veth pairs and a host bridge.

Every node of the environment lives in its own network namespace with an `eth0` on the
environment's host bridge, like a machine on a LAN; the host routes each node's pod CIDR
to that node. Setting up is idempotent (what exists is kept) and tearing down removes
exactly the links, routes and namespaces named by the plan, nothing else.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubeglobe.local.topology import EnvironmentPlan, Node

NETNS_DIR = Path("/var/run/netns")


class NetworkError(RuntimeError):
    pass


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *args] if netns is None else ["ip", "-n", netns, *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetworkError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done.stdout


def _link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip", "link", "show", name]
    if netns is not None:
        argv[1:1] = ["-n", netns]
    return subprocess.run(argv, capture_output=True).returncode == 0


def _sysctl(key: str, value: str, netns: str | None = None) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    if netns is None:
        Path(path).write_text(value)
        return
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "sh", "-c", f"echo {value} > {path}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetworkError(f"setting {key}={value} in {netns} failed: {done.stderr.strip()}")


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def ensure_host_bridge(env: EnvironmentPlan) -> None:
    if not _link_exists(env.bridge):
        _ip("link", "add", env.bridge, "type", "bridge")
    prefix = env.node_subnet.split("/")[1]
    have = _ip("-o", "addr", "show", "dev", env.bridge)
    for address in env.host_addresses():
        if f"{address}/{prefix}" not in have:
            _ip("addr", "add", f"{address}/{prefix}", "dev", env.bridge)
    _ip("link", "set", env.bridge, "up")
    _sysctl("net.ipv4.ip_forward", "1")


def ensure_node_network(env: EnvironmentPlan, node: Node) -> None:
    if not netns_exists(node.netns):
        _ip("netns", "add", node.netns)
    if not _link_exists("eth0", netns=node.netns):
        if _link_exists(node.host_veth):
            _ip("link", "del", node.host_veth)
        _ip("link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0",
            "netns", node.netns)
    _ip("link", "set", node.host_veth, "master", env.bridge)
    _ip("link", "set", node.host_veth, "up")
    prefix = env.node_subnet.split("/")[1]
    have = _ip("-o", "addr", "show", "dev", "eth0", netns=node.netns)
    if f"{node.ip}/{prefix}" not in have:
        _ip("addr", "add", f"{node.ip}/{prefix}", "dev", "eth0", netns=node.netns)
    _ip("link", "set", "lo", "up", netns=node.netns)
    _ip("link", "set", "eth0", "up", netns=node.netns)
    _ip("route", "replace", "default", "via", env.host_ip, netns=node.netns)
    _sysctl("net.ipv4.ip_forward", "1", netns=node.netns)
    _ip("route", "replace", node.pod_cidr, "via", node.ip)


def set_node_link(node: Node, *, up: bool) -> None:
    """Cut or restore a node's wire (a network partition for tests)."""
    _ip("link", "set", node.host_veth, "up" if up else "down")


def remove_node_network(node: Node) -> None:
    _ip("route", "del", node.pod_cidr, check=False)
    if _link_exists(node.host_veth):
        _ip("link", "del", node.host_veth, check=False)
    if netns_exists(node.netns):
        _ip("netns", "del", node.netns)


def slot_namespaces(slot: int) -> list[str]:
    """The network namespaces that exist with slot `slot`'s prefix."""
    return sorted(p.name for p in NETNS_DIR.glob(f"kg{slot}-*")) if NETNS_DIR.exists() else []


def remove_namespace(netns: str) -> None:
    _ip("netns", "del", netns)


def remove_host_bridge(env: EnvironmentPlan) -> None:
    if _link_exists(env.bridge):
        _ip("link", "del", env.bridge)


def bridge_in_use(bridge: str) -> bool:
    return _link_exists(bridge)
