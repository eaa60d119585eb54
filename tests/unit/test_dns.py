"""Cluster DNS: the zone from Services and Endpoints, the answers, the objects (pure)."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import pytest

from kubeglobe.dns.answer import answer
from kubeglobe.dns.manifests import dns_manifests
from kubeglobe.dns.records import Zone, zone
from kubeglobe.dns.server import DnsServer


def _svc(name: str, ns: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


SERVICES = [
    _svc("kubernetes", "default", clusterIP="10.96.0.1",
         ports=[{"name": "https", "port": 443, "protocol": "TCP"}]),
    _svc("web", "shop", clusterIP="10.96.0.20", ports=[{"port": 80}]),  # no name: no SRV
    _svc("db", "shop", clusterIP="None", ports=[{"name": "pg", "port": 5432}]),
    _svc("late", "shop", clusterIP="None", publishNotReadyAddresses=True),
    _svc("out", "shop", type="ExternalName", externalName="web.shop.svc.cluster.local"),
    _svc("far", "shop", type="ExternalName", externalName="example.org"),
]
ENDPOINTS = [
    {"metadata": {"name": "db", "namespace": "shop"}, "subsets": [{
        "addresses": [{"ip": "10.200.1.5", "hostname": "db-0"}, {"ip": "10.200.2.7"}],
        "notReadyAddresses": [{"ip": "10.200.3.9"}]}]},
    {"metadata": {"name": "late", "namespace": "shop"}, "subsets": [{
        "notReadyAddresses": [{"ip": "10.200.3.9"}]}]},
]


@pytest.fixture
def cluster() -> Zone:
    return zone(SERVICES, ENDPOINTS)


def _ask(z: Zone, name: str, kind: str = "A") -> dns.message.Message:
    reply = answer(dns.message.make_query(name, kind), z)
    assert reply is not None
    return reply


def _values(reply: dns.message.Message) -> list[str]:
    return sorted(item.to_text() for rrset in reply.answer for item in rrset)


def test_services_have_the_names_kubernetes_specifies(cluster: Zone) -> None:
    assert _values(_ask(cluster, "kubernetes.default.svc.cluster.local")) == ["10.96.0.1"]
    assert _values(_ask(cluster, "WEB.shop.svc.cluster.local.")) == ["10.96.0.20"]  # any case
    # headless: the ready endpoints only, each also under its own name
    assert _values(_ask(cluster, "db.shop.svc.cluster.local")) == ["10.200.1.5", "10.200.2.7"]
    assert _values(_ask(cluster, "db-0.db.shop.svc.cluster.local")) == ["10.200.1.5"]
    assert _values(_ask(cluster, "10-200-2-7.db.shop.svc.cluster.local")) == ["10.200.2.7"]
    assert _values(_ask(cluster, "late.shop.svc.cluster.local")) == ["10.200.3.9"]
    srv = _ask(cluster, "_pg._tcp.db.shop.svc.cluster.local", "SRV")
    assert _values(srv) == ["0 100 5432 10-200-2-7.db.shop.svc.cluster.local.",
                            "0 100 5432 db-0.db.shop.svc.cluster.local."]
    assert len(srv.additional) == 2  # the targets' addresses come along
    https = _ask(cluster, "_https._tcp.kubernetes.default.svc.cluster.local", "SRV")
    assert _values(https) == ["0 100 443 kubernetes.default.svc.cluster.local."]


def test_external_names_are_cnames_followed_inside_the_zone(cluster: Zone) -> None:
    inside = _ask(cluster, "out.shop.svc.cluster.local")
    assert _values(inside) == ["10.96.0.20", "web.shop.svc.cluster.local."]
    outside = _ask(cluster, "far.shop.svc.cluster.local")
    assert _values(outside) == ["example.org."]


def test_missing_names_are_nxdomain_and_existing_ones_without_data_are_nodata(
        cluster: Zone) -> None:
    missing = _ask(cluster, "nope.shop.svc.cluster.local")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority  # SOA: cacheable
    for name, kind in (("shop.svc.cluster.local", "A"),  # a parent of names
                       ("kubernetes.default.svc.cluster.local", "AAAA")):  # IPv4 only
        empty = _ask(cluster, name, kind)
        assert empty.rcode() == dns.rcode.NOERROR and not empty.answer and empty.authority
    assert _ask(cluster, "cluster.local", "SOA").answer
    assert _ask(cluster, "web.shop.svc.cluster.local").flags & dns.flags.AA


def test_names_outside_the_domain_are_not_answered_here(cluster: Zone) -> None:
    assert answer(dns.message.make_query("example.org", "A"), cluster) is None
    assert answer(dns.message.make_query("notcluster.local", "A"), cluster) is None


def test_a_service_without_an_address_yet_has_no_name() -> None:
    z = zone([_svc("new", "shop", ports=[{"name": "http", "port": 80}])], [])
    assert _ask(z, "new.shop.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN


def test_an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() -> None:
    many = [{"ip": f"10.200.{i // 200}.{i % 200 + 1}"} for i in range(60)]
    z = zone([_svc("big", "shop", clusterIP="None")],
             [{"metadata": {"name": "big", "namespace": "shop"},
               "subsets": [{"addresses": many}]}])
    server = DnsServer(client=None, zone=z)  # type: ignore[arg-type]  # no lookups here
    wire = dns.message.make_query("big.shop.svc.cluster.local", "A").to_wire()
    udp = dns.message.from_wire(asyncio.run(server.reply(wire, udp=True)) or b"")
    tcp = dns.message.from_wire(asyncio.run(server.reply(wire)) or b"")
    assert udp.flags & dns.flags.TC and not udp.answer
    assert len(_values(tcp)) == 60


def test_an_unreadable_query_is_dropped_and_an_outside_one_refused_without_upstreams(
        cluster: Zone) -> None:
    server = DnsServer(client=None, zone=cluster)  # type: ignore[arg-type]
    assert asyncio.run(server.reply(b"\x00garbage")) is None
    wire = asyncio.run(server.reply(dns.message.make_query("example.org", "A").to_wire()))
    assert dns.message.from_wire(wire or b"").rcode() == dns.rcode.REFUSED


def test_the_dns_objects_are_a_kube_dns_service_and_a_deployment_that_watches_only() -> None:
    objects = {m["kind"]: m for m in dns_manifests(image="img:1", cluster_ip="10.96.0.10")}
    assert objects["Service"]["spec"]["clusterIP"] == "10.96.0.10"
    assert objects["Service"]["metadata"] == {"name": "kube-dns", "namespace": "kube-system",
                                              "labels": objects["Service"]["metadata"]["labels"]}
    assert objects["ClusterRole"]["rules"] == [{"apiGroups": [""],
                                                "resources": ["services", "endpoints"],
                                                "verbs": ["list", "watch"]}]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:2] == ["kubeglobe", "dns"]
    assert "10.96.0.10" in container["command"]
    assert container["readinessProbe"]["tcpSocket"]["port"] == 53
    assert "limits" in container["resources"] and pod["dnsPolicy"] == "Default"
    assert objects["Deployment"]["spec"]["replicas"] == 2
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1  # one at a time
