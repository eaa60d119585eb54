"""The shape of a local environment, computed as data and nothing else.

`plan_environment` is a pure function from a few settings (slot, port base, how many
workload clusters) to every name, address and port the environment will use: clusters,
etcd members, apiservers, the global endpoint, nodes and their network namespaces.
Everything that starts, checks or stops a part reads it from here, so two callers can
never disagree on a port. It must never touch the machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType

ClusterName = NewType("ClusterName", str)

GLOBAL = ClusterName("global")
MAX_SLOT = 49
PORTS_PER_CLUSTER = 20
PORTS_PER_SLOT = 200
FIRST_PORT = 20000
MAX_WORKLOAD_CLUSTERS = 8
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256


@dataclass(frozen=True)
class EtcdMember:
    name: str
    client_port: int
    peer_port: int


@dataclass(frozen=True)
class Apiserver:
    name: str
    ip: str  # each apiserver of a HA cluster has its own address, as on separate machines
    port: int


@dataclass(frozen=True)
class Node:
    name: str
    netns: str
    host_veth: str
    ip: str
    pod_cidr: str

    @property
    def pod_gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


@dataclass(frozen=True)
class ClusterPlan:
    name: ClusterName
    index: int
    etcd: tuple[EtcdMember, ...]
    apiservers: tuple[Apiserver, ...]
    endpoint_port: int
    has_load_balancer: bool
    controller_manager_ports: tuple[int, ...]
    scheduler_ports: tuple[int, ...]
    nodes: tuple[Node, ...]
    service_cidr: str
    cluster_cidr: str
    # The platform's own processes (global only): API server replicas and their endpoint.
    platform_server_ports: tuple[int, ...] = ()
    platform_endpoint_port: int | None = None
    agent_endpoint_port: int | None = None  # the gateway's port for agents (reverse HTTP)
    servers_agents_port: int | None = None  # the gateway's port for the servers' streams

    @property
    def kubernetes_service_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))

    def ports(self) -> list[int]:
        """Every host port this cluster listens on (HA apiservers share one port)."""
        found = [p for m in self.etcd for p in (m.client_port, m.peer_port)]
        found += sorted({a.port for a in self.apiservers})
        if self.has_load_balancer:
            found.append(self.endpoint_port)
        found += list(self.controller_manager_ports) + list(self.scheduler_ports)
        found += list(self.platform_server_ports)
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
        """Addresses the host bridge carries: the gateway and every apiserver's own."""
        found = [self.host_ip]
        for c in self.clusters:
            found += [a.ip for a in c.apiservers if a.ip not in found]
        return found

    def nodes(self) -> list[Node]:
        return [n for c in self.clusters for n in c.nodes]

    def cluster_dir(self, name: str) -> Path:
        return self.state_dir / "clusters" / name

    def node_dir(self, node: Node) -> Path:
        return self.state_dir / "nodes" / node.name


def default_port_base(slot: int) -> int:
    return FIRST_PORT + slot * PORTS_PER_SLOT


def _validate(*, slot: int, port_base: int, workload_clusters: int) -> None:
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot} is out of range; use a slot between 0 and {MAX_SLOT}")
    if not 0 <= workload_clusters <= MAX_WORKLOAD_CLUSTERS:
        raise ValueError(
            f"--workload-clusters {workload_clusters} is out of range; "
            f"use 0 to {MAX_WORKLOAD_CLUSTERS} (each cluster costs a node and a control plane)"
        )
    top = port_base + (workload_clusters + 1) * PORTS_PER_CLUSTER
    if port_base < 1024 or top > 32767:
        raise ValueError(
            f"port base {port_base} gives ports {port_base}..{top - 1}; "
            "choose a base between 1024 and "
            f"{32767 - (workload_clusters + 1) * PORTS_PER_CLUSTER} "
            "(below the kernel's ephemeral range)"
        )


def _cluster(
    *, name: ClusterName, index: int, slot: int, port_base: int, ha: bool
) -> ClusterPlan:
    base = port_base + index * PORTS_PER_CLUSTER
    members = 3 if ha else 1
    etcd = tuple(
        EtcdMember(name=f"etcd-{i}", client_port=base + 2 * i, peer_port=base + 2 * i + 1)
        for i in range(members)
    )
    n_api = 2 if ha else 1
    # Apiservers of one cluster must share a port: the `kubernetes` Service has one port
    # for all its endpoints, and each apiserver reconciles it to its own.
    apiservers = tuple(
        Apiserver(name=f"apiserver-{i}", ip=f"10.250.{slot}.{2 + i}" if ha else
                  f"10.250.{slot}.1", port=base + 6)
        for i in range(n_api)
    )
    endpoint = base + 9 if ha else apiservers[0].port
    replicas = 2 if ha else 1
    cm_ports = tuple(base + 10 + i for i in range(replicas))
    sched_ports = tuple(base + 12 + i for i in range(replicas))
    # One node per cluster today; node numbers are unique inside the environment so
    # every node gets its own address on the shared bridge.
    node_number = index + 1
    node_name = f"{name}-node-1"
    node = Node(
        name=node_name,
        netns=f"kg{slot}-{name}-n1",
        host_veth=f"kgv{slot}n{node_number}",
        ip=f"10.250.{slot}.{10 + node_number}",
        pod_cidr=f"10.{200 + slot}.{node_number}.0/24",
    )
    return ClusterPlan(
        name=name,
        index=index,
        etcd=etcd,
        apiservers=apiservers,
        endpoint_port=endpoint,
        has_load_balancer=ha,
        controller_manager_ports=cm_ports,
        scheduler_ports=sched_ports,
        nodes=(node,),
        service_cidr=f"10.96.{index}.0/24",
        cluster_cidr=f"10.{200 + slot}.0.0/16",
        platform_server_ports=(base + 14, base + 15) if name == GLOBAL else (),
        platform_endpoint_port=base + 16 if name == GLOBAL else None,
        agent_endpoint_port=base + 17 if name == GLOBAL else None,
        servers_agents_port=base + 18 if name == GLOBAL else None,
    )


def plan_environment(
    *, state_dir: Path, slot: int, workload_clusters: int, port_base: int | None = None
) -> EnvironmentPlan:
    """Compute the whole environment: a HA global cluster and N single-node workload clusters."""
    base = default_port_base(slot) if port_base is None else port_base
    _validate(slot=slot, port_base=base, workload_clusters=workload_clusters)
    names = [GLOBAL] + [ClusterName(f"workload-{i}") for i in range(1, workload_clusters + 1)]
    clusters = tuple(
        _cluster(name=n, index=i, slot=slot, port_base=base, ha=(n == GLOBAL))
        for i, n in enumerate(names)
    )
    return EnvironmentPlan(
        slot=slot,
        port_base=base,
        state_dir=state_dir,
        bridge=f"kgbr{slot}",
        host_ip=f"10.250.{slot}.1",
        node_subnet=f"10.250.{slot}.0/24",
        clusters=clusters,
    )
