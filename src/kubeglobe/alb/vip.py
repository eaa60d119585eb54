"""An instance's VIP: the keepalived configuration of each of its nodes (pure).

VRRP between the instance's nodes, by unicast to each other (no multicast needed on
the network between them), advertised every second. Every node starts as BACKUP and
the highest priority (the first node by name) wins; with `failback` off, `nopreempt`
keeps the VIP where it is when that node comes back. A script checks the node's own
HAProxy every second: two failures in a row and the node gives the VIP up.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

ADVERT_SECONDS = 1
TOP_PRIORITY = 200


@dataclass(frozen=True)
class VipNode:
    name: str
    ip: str  # its address on the VIP's network


def router_id(gateway: str, chosen: int | None = None) -> int:
    """VRRP's virtual router id: the one chosen, or one from the Gateway's name."""
    if chosen is not None:
        return chosen
    return int(hashlib.sha256(gateway.encode()).hexdigest(), 16) % 255 + 1


def _word(value: str) -> str:
    if not value or any(c in value for c in ' "{}\n\t#!'):
        raise ValueError(f"{value!r} cannot be a keepalived word")
    return value


def render_keepalived(*, gateway: str, vip: str, network: str, interface: str,
                      me: str, nodes: list[VipNode], check: list[str],
                      failback: bool = False, virtual_router_id: int | None = None) -> str:
    """keepalived.conf for node `me` of `nodes` (all of the instance's nodes)."""
    net = ipaddress.IPv4Network(network, strict=False)
    if ipaddress.IPv4Address(vip) not in net:
        raise ValueError(f"vip {vip} is not in the nodes' network {net}; give an unused "
                         f"address of {net}")
    ordered = sorted(nodes, key=lambda n: n.name)
    mine = next((n for n in ordered if n.name == me), None)
    if mine is None:
        raise ValueError(f"node {me} is not one of the instance's nodes")
    if vip in {n.ip for n in ordered}:
        raise ValueError(f"vip {vip} is a node's own address; give an unused one")
    priority = TOP_PRIORITY - 10 * ordered.index(mine)
    peers = "".join(f"        {n.ip}\n" for n in ordered if n is not mine)
    script = " ".join(_word(a) for a in check)
    return f"""# Written by kubeglobe (alb/vip.py) for gateway {_word(gateway)} on {_word(me)}.
global_defs {{
    router_id {_word(me)}
    enable_script_security
    script_user root
}}

vrrp_script kg_haproxy {{
    script "{script}"
    interval {ADVERT_SECONDS}
    timeout {ADVERT_SECONDS}
    fall 2
    rise 2
}}

vrrp_instance kg_{_word(gateway).replace('-', '_')} {{
    state BACKUP
    interface {_word(interface)}
    virtual_router_id {router_id(gateway, virtual_router_id)}
    priority {priority}
    advert_int {ADVERT_SECONDS}
{'' if failback else '    nopreempt' + chr(10)}    unicast_src_ip {mine.ip}
    unicast_peer {{
{peers}    }}
    virtual_ipaddress {{
        {vip}/{net.prefixlen} dev {_word(interface)}
    }}
    track_script {{
        kg_haproxy
    }}
}}
"""
