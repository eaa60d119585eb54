from pathlib import Path

import pytest

from kubeglobe.local.topology import GLOBAL, plan_environment


def plan(slot: int = 0, n: int = 2, port_base: int | None = None):  # type: ignore[no-untyped-def]
    return plan_environment(state_dir=Path("/s"), slot=slot, workload_clusters=n,
                            port_base=port_base)


def test_global_is_three_control_plane_node_hosts_and_workloads_are_single() -> None:
    p = plan()
    g = p.cluster(GLOBAL)
    assert g.has_load_balancer
    planes = [n for n in g.nodes if n.control_plane]
    assert [n.name for n in g.nodes] == ["global-cp-1", "global-cp-2", "global-cp-3",
                                         "global-node-1"]
    # each control-plane node host runs one of each, on its own address and netns
    for kind in (g.etcd, g.apiservers, g.controller_managers, g.schedulers):
        assert [(d.ip, d.netns) for d in kind] == [(n.ip, n.netns) for n in planes]
    assert {m.client_port for m in g.etcd} == {2379} and {a.port for a in g.apiservers} == {6443}
    for w in p.clusters[1:]:
        assert len(w.etcd) == 1 and len(w.apiservers) == 1 and not w.has_load_balancer
        assert w.endpoint_port == w.apiservers[0].port
        assert w.apiservers[0].netns is None and w.etcd[0].netns is None
        assert [n.name for n in w.nodes] == [f"{w.name}-node-1"]
    assert [c.name for c in p.clusters] == ["global", "workload-1", "workload-2"]
    assert p.host_addresses() == [p.host_ip]  # nothing of global binds the host bridge


def test_node_counts_are_settings() -> None:
    p = plan_environment(state_dir=Path("/s"), slot=0, workload_clusters=2, global_workers=2,
                         workload_nodes=3)
    assert [n.name for n in p.cluster(GLOBAL).nodes][3:] == ["global-node-1", "global-node-2"]
    assert [n.name for n in p.cluster("workload-2").nodes] == [
        "workload-2-node-1", "workload-2-node-2", "workload-2-node-3"]
    nodes = p.nodes()
    for field in ("ip", "netns", "host_veth", "pod_cidr"):
        assert len({getattr(n, field) for n in nodes}) == len(nodes) == 11, field
    with pytest.raises(ValueError, match="--nodes 0 is out of range"):
        plan_environment(state_dir=Path("/s"), slot=0, workload_clusters=1, workload_nodes=0)
    with pytest.raises(ValueError, match="--global-workers 9 is out of range"):
        plan_environment(state_dir=Path("/s"), slot=0, workload_clusters=1, global_workers=9)


def test_ports_unique_and_inside_block() -> None:
    p = plan(slot=3, n=8)
    ports = p.ports()
    assert len(ports) == len(set(ports))
    assert min(ports) >= p.port_base and max(ports) < p.port_base + 200


def test_two_slots_share_nothing() -> None:
    a, b = plan(slot=0), plan(slot=1)
    assert not set(a.ports()) & set(b.ports())
    assert not set(a.host_addresses()) & set(b.host_addresses())
    assert a.bridge != b.bridge and a.host_ip != b.host_ip
    assert not {n.netns for n in a.nodes()} & {n.netns for n in b.nodes()}
    assert not {n.pod_cidr for n in a.nodes()} & {n.pod_cidr for n in b.nodes()}


def test_node_names_fit_linux_limits() -> None:
    p = plan_environment(state_dir=Path("/s"), slot=49, workload_clusters=8,
                         global_workers=8, workload_nodes=8)
    for node in p.nodes():
        assert len(node.host_veth) <= 15
        assert node.ip.startswith("10.250.49.")
    assert len({n.ip for n in p.nodes()}) == len(p.nodes())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"slot": 50}, "slot 50 is out of range"),
        ({"n": 9}, "--workload-clusters 9 is out of range"),
        ({"port_base": 32750}, "port base 32750"),
        ({"port_base": 80}, "port base 80"),
    ],
)
def test_bad_settings_name_the_problem(kwargs: dict[str, int], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        plan(**kwargs)


def test_unknown_cluster_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="known: global, workload-1, workload-2"):
        plan().cluster("nope")


def test_components_declare_every_planned_host_port() -> None:
    from kubeglobe.local.binaries import K8sBinaries
    from kubeglobe.local.environment import components

    p = plan(n=2)
    parts = components(plan=p, binaries=K8sBinaries(dir=Path("/bin")))
    declared = [port for c in parts for port in c.host_ports]
    assert set(declared) == set(p.ports())
