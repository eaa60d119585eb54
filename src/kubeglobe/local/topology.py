"""The shape of a local environment, computed as data and nothing else.

`plan_environment` is a pure function from a few settings (slot, port base, how many
workload clusters, global workers and workload nodes) to every name, address and port
the environment will use: clusters, etcd members, apiservers, the global endpoint, nodes
and their network namespaces. Everything that starts, checks or stops a part reads it
from here, so two callers can never disagree on a port. It must never touch the machine.

The global cluster is three control-plane node hosts, as kubeadm's stacked HA topology
has them: each its own network namespace running one etcd member, one apiserver, a
controller-manager and a scheduler beside its kubelet, on the ports a real machine
would use; then its worker node hosts. Its endpoint is a load balancer on the host.
A workload cluster's control plane runs on the host (one etcd member, one apiserver,
ports from the slot's block); its nodes are hosts of their own.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

from kubeglobe.registry.manifests import PORT as REGISTRY_PORT  # on each control-plane node

ClusterName = NewType("ClusterName", str)

GLOBAL = ClusterName("global")
MAX_SLOT = 49
PORTS_PER_CLUSTER = 20
PORTS_PER_SLOT = 200
FIRST_PORT = 20000
MAX_WORKLOAD_CLUSTERS = 8
MAX_NODES = 8  # global workers, or nodes of one workload cluster
CONTROL_PLANE_NODES = 3
# The ports of a control-plane node host (its own address: no host port is taken).
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
APISERVER_PORT = 6443
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256


@dataclass(frozen=True)
class EtcdMember:
    name: str
    ip: str  # the address it serves (its node host's, or the host's)
    client_port: int
    peer_port: int
    netns: str | None = None  # the node host it runs on; None: the environment's host

    @property
    def client_url(self) -> str:
        return f"https://{self.ip}:{self.client_port}"


@dataclass(frozen=True)
class Daemon:
    """Where a control-plane daemon (apiserver, controller-manager, scheduler) serves:
    its address and port, and the node host it runs on (None: the environment's host)."""

    name: str
    ip: str
    port: int
    netns: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    netns: str
    host_veth: str
    ip: str
    pod_cidr: str
    control_plane: bool = False

    @property
    def pod_gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


@dataclass(frozen=True)
class ClusterPlan:
    name: ClusterName
    index: int
    etcd: tuple[EtcdMember, ...]
    apiservers: tuple[Daemon, ...]
    endpoint_port: int
    has_load_balancer: bool
    controller_managers: tuple[Daemon, ...]
    schedulers: tuple[Daemon, ...]
    nodes: tuple[Node, ...]
    service_cidr: str
    cluster_cidr: str
    # The platform's endpoint (global only): the gateway's ports on the host.
    platform_endpoint_port: int | None = None
    agent_endpoint_port: int | None = None  # the gateway's port for agents (reverse HTTP)
    servers_agents_port: int | None = None  # the gateway's port for the servers' streams

    @property
    def kubernetes_service_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))

    @property
    def dns_service_ip(self) -> str:
        """The cluster DNS's Service address (the tenth, as kubeadm picks it)."""
        return str(ipaddress.ip_network(self.service_cidr)[10])

    def ports(self) -> list[int]:
        """Every host port this cluster listens on (what runs on a node host takes none)."""
        found = [p for m in self.etcd if m.netns is None for p in (m.client_port, m.peer_port)]
        found += sorted({a.port for a in self.apiservers if a.netns is None})
        if self.has_load_balancer:
            found.append(self.endpoint_port)
        found += [d.port for d in (*self.controller_managers, *self.schedulers)
                  if d.netns is None]
        gateway = (self.platform_endpoint_port, self.agent_endpoint_port, self.servers_agents_port)
        return found + [p for p in gateway if p is not None]


@dataclass(frozen=True)
class EnvironmentPlan:
    slot: int
    port_base: int
    state_dir: Path
    bridge: str
    host_ip: str
    node_subnet: str
    clusters: tuple[ClusterPlan, ...] = field(default_factory=tuple)

    def cluster(self, name: str) -> ClusterPlan:
        for c in self.clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters)
        raise KeyError(f"no cluster named {name!r} in this environment; known: {known}")

    def ports(self) -> list[int]:
        return [p for c in self.clusters for p in c.ports()]

    def host_addresses(self) -> list[str]:
        """Addresses the host bridge carries: the host's, and those of the apiservers
        that run on the host."""
        found = [self.host_ip]
        for c in self.clusters:
            found += [a.ip for a in c.apiservers if a.netns is None and a.ip not in found]
        return found

    def nodes(self) -> list[Node]:
        return [n for c in self.clusters for n in c.nodes]

    def registry_mirrors(self, node: Node) -> tuple[str, ...]:
        """The platform registry's replicas (one per global control-plane node) in the
        order `node`'s containerd tries them: a control-plane node's own first, the other
        nodes' spread over the replicas, each list with every replica in it."""
        planes = [n for n in self.cluster(GLOBAL).nodes if n.control_plane]
        first = (planes.index(node) if node in planes
                 else self.nodes().index(node)) % len(planes)
        return tuple(f"http://{n.ip}:{REGISTRY_PORT}" for n in planes[first:] + planes[:first])

    def cluster_dir(self, name: str) -> Path:
        return self.state_dir / "clusters" / name

    def node_dir(self, node: Node) -> Path:
        return self.state_dir / "nodes" / node.name


def default_port_base(slot: int) -> int:
    return FIRST_PORT + slot * PORTS_PER_SLOT


def _validate(*, slot: int, port_base: int, workload_clusters: int, global_workers: int,
              workload_nodes: int) -> None:
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} is out of range; use a slot between 0 and {MAX_SLOT}")
    if not 0 <= workload_clusters <= MAX_WORKLOAD_CLUSTERS:
        raise ValueError(
            f"--workload-clusters {workload_clusters} is out of range; "
            f"use 0 to {MAX_WORKLOAD_CLUSTERS} (each cluster costs a node and a control plane)"
        )
    if not 0 <= global_workers <= MAX_NODES:
        raise ValueError(f"--global-workers {global_workers} is out of range; use 0 to "
                         f"{MAX_NODES} (the three control-plane nodes are always there)")
    if not 1 <= workload_nodes <= MAX_NODES:
        raise ValueError(f"--nodes {workload_nodes} is out of range; use 1 to {MAX_NODES} "
                         "nodes per workload cluster")
    top = port_base + (workload_clusters + 1) * PORTS_PER_CLUSTER
    if port_base < 1024 or top > 32767:
        raise ValueError(
            f"port base {port_base} gives ports {port_base}..{top - 1}; "
            "choose a base between 1024 and "
            f"{32767 - (workload_clusters + 1) * PORTS_PER_CLUSTER} "
            "(below the kernel's ephemeral range)"
        )


def _node(*, slot: int, number: int, name: str, control_plane: bool = False) -> Node:
    """Node `number` of the environment (unique across its clusters: its address, its
    veth and its pod CIDR come from it)."""
    return Node(name=name, netns=f"kg{slot}-{name}", host_veth=f"kgv{slot}n{number}",
                ip=f"10.250.{slot}.{10 + number}", pod_cidr=f"10.{200 + slot}.{number}.0/24",
                control_plane=control_plane)


def _global(*, slot: int, port_base: int, workers: int) -> ClusterPlan:
    """Three control-plane node hosts (etcd, apiserver, controller-manager, scheduler
    each, on a real machine's ports) and `workers` worker node hosts."""
    base = port_base
    planes = tuple(_node(slot=slot, number=i, name=f"{GLOBAL}-cp-{i}", control_plane=True)
                   for i in range(1, CONTROL_PLANE_NODES + 1))
    workers_ = tuple(_node(slot=slot, number=CONTROL_PLANE_NODES + i, name=f"{GLOBAL}-node-{i}")
                     for i in range(1, workers + 1))

    def on_planes(prefix: str, port: int) -> tuple[Daemon, ...]:
        return tuple(Daemon(name=f"{prefix}-{i}", ip=n.ip, port=port, netns=n.netns)
                     for i, n in enumerate(planes))

    return ClusterPlan(
        name=GLOBAL,
        index=0,
        etcd=tuple(EtcdMember(name=f"etcd-{i}", ip=n.ip, client_port=ETCD_CLIENT_PORT,
                              peer_port=ETCD_PEER_PORT, netns=n.netns)
                   for i, n in enumerate(planes)),
        apiservers=on_planes("apiserver", APISERVER_PORT),
        endpoint_port=base + 9,
        has_load_balancer=True,
        controller_managers=on_planes("controller-manager", CONTROLLER_MANAGER_PORT),
        schedulers=on_planes("scheduler", SCHEDULER_PORT),
        nodes=planes + workers_,
        service_cidr="10.96.0.0/24",
        cluster_cidr=f"10.{200 + slot}.0.0/16",
        platform_endpoint_port=base + 16,
        agent_endpoint_port=base + 17,
        servers_agents_port=base + 18,
    )


def _workload(*, name: ClusterName, index: int, slot: int, port_base: int, host_ip: str,
              first_node: int, nodes: int) -> ClusterPlan:
    """A control plane on the host (ports from the cluster's block) and `nodes` node
    hosts, numbered from `first_node`."""
    base = port_base + index * PORTS_PER_CLUSTER
    return ClusterPlan(
        name=name,
        index=index,
        etcd=(EtcdMember(name="etcd-0", ip=host_ip, client_port=base, peer_port=base + 1),),
        apiservers=(Daemon(name="apiserver-0", ip=host_ip, port=base + 6),),
        endpoint_port=base + 6,
        has_load_balancer=False,
        controller_managers=(Daemon(name="controller-manager-0", ip="127.0.0.1",
                                    port=base + 10),),
        schedulers=(Daemon(name="scheduler-0", ip="127.0.0.1", port=base + 12),),
        nodes=tuple(_node(slot=slot, number=first_node + i, name=f"{name}-node-{i + 1}")
                    for i in range(nodes)),
        service_cidr=f"10.96.{index}.0/24",
        cluster_cidr=f"10.{200 + slot}.0.0/16",
    )


def plan_environment(
    *, state_dir: Path, slot: int, workload_clusters: int, port_base: int | None = None,
    global_workers: int = 1, workload_nodes: int = 1,
) -> EnvironmentPlan:
    """Compute the whole environment: a HA global cluster of three control-plane node
    hosts and `global_workers` workers, and N workload clusters of `workload_nodes`."""
    base = default_port_base(slot) if port_base is None else port_base
    _validate(slot=slot, port_base=base, workload_clusters=workload_clusters,
              global_workers=global_workers, workload_nodes=workload_nodes)
    host_ip = f"10.250.{slot}.1"
    clusters = [_global(slot=slot, port_base=base, workers=global_workers)]
    for i in range(1, workload_clusters + 1):
        first = sum(len(c.nodes) for c in clusters) + 1
        clusters.append(_workload(name=ClusterName(f"workload-{i}"), index=i, slot=slot,
                                  port_base=base, host_ip=host_ip, first_node=first,
                                  nodes=workload_nodes))
    return EnvironmentPlan(
        slot=slot,
        port_base=base,
        state_dir=state_dir,
        bridge=f"kgbr{slot}",
        host_ip=host_ip,
        node_subnet=f"10.250.{slot}.0/24",
        clusters=tuple(clusters),
    )
