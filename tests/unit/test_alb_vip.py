"""Each node's keepalived configuration for an instance's VIP (pure)."""

from __future__ import annotations

import pytest

from kubeglobe.alb.vip import VipNode, render_keepalived, router_id

NODES = [VipNode("global-cp-2", "10.250.0.12"), VipNode("global-cp-1", "10.250.0.11"),
         VipNode("global-cp-3", "10.250.0.13")]
CHECK = ["/usr/local/bin/kubeglobe-check", "127.0.0.1:8404"]


def conf(me: str, **kw: object) -> str:
    return render_keepalived(gateway="edge", vip="10.250.0.100", network="10.250.0.0/24",
                             interface="eth0", me=me, nodes=NODES, check=CHECK, **kw)  # type: ignore[arg-type]


def test_the_first_node_by_name_is_preferred_and_each_node_sends_to_the_others() -> None:
    first, third = conf("global-cp-1"), conf("global-cp-3")
    assert "    priority 200\n" in first and "    priority 180\n" in third
    assert "    unicast_src_ip 10.250.0.11\n" in first
    peers = first.split("unicast_peer {\n", 1)[1].split("    }", 1)[0].split()
    assert peers == ["10.250.0.12", "10.250.0.13"]
    assert "        10.250.0.100/24 dev eth0\n" in first
    assert f'    script "{" ".join(CHECK)}"\n' in first and "kg_haproxy" in first
    # the same router id on every node, and one that stays for a name
    ids = {line for c in (first, third) for line in c.splitlines() if "virtual_router_id" in line}
    assert len(ids) == 1 and 1 <= router_id("edge") <= 255 and router_id("edge", 7) == 7


def test_without_failback_the_vip_stays_where_it_went() -> None:
    assert "    nopreempt\n" in conf("global-cp-1")
    assert "nopreempt" not in conf("global-cp-1", failback=True)


def test_a_vip_outside_the_network_or_a_nodes_own_address_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the nodes' network"):
        render_keepalived(gateway="edge", vip="10.9.0.1", network="10.250.0.0/24",
                          interface="eth0", me="global-cp-1", nodes=NODES, check=CHECK)
    with pytest.raises(ValueError, match="a node's own address"):
        render_keepalived(gateway="edge", vip="10.250.0.12", network="10.250.0.0/24",
                          interface="eth0", me="global-cp-1", nodes=NODES, check=CHECK)
    with pytest.raises(ValueError, match="not one of the instance's nodes"):
        conf("global-node-1")
    with pytest.raises(ValueError, match="cannot be a keepalived word"):
        render_keepalived(gateway="edge", vip="10.250.0.100", network="10.250.0.0/24",
                          interface="eth0", me="global-cp-1", nodes=NODES,
                          check=["sh", "-c", "echo {x}"])
