"""The gateway's backend of the API server replicas, from their Service's Endpoints."""

from __future__ import annotations

from pathlib import Path

from lightkube.models.core_v1 import (
    EndpointAddress,
    EndpointPort,
    EndpointSubset,
    ObjectReference,
)

from kubeglobe.gateway.servers import render_servers
from kubeglobe.kube.endpoints import Ready, ready_addresses


def test_only_ready_addresses_become_servers_named_by_their_pods() -> None:
    subsets = [EndpointSubset(
        addresses=[EndpointAddress(ip="10.201.5.2", targetRef=ObjectReference(name="srv-b")),
                   EndpointAddress(ip="10.201.4.7", targetRef=ObjectReference(name="srv-a"))],
        notReadyAddresses=[EndpointAddress(ip="10.201.3.9",
                                           targetRef=ObjectReference(name="srv-c"))],
        ports=[EndpointPort(port=8443, name="https")])]
    assert ready_addresses(subsets) == [Ready("srv-a", "10.201.4.7", 8443),
                                       Ready("srv-b", "10.201.5.2", 8443)]
    assert ready_addresses(None) == []
    assert ready_addresses([EndpointSubset(addresses=subsets[0].addresses)]) == []  # no port
    assert ready_addresses(subsets, port="agents") == []  # no port of that name
    assert ready_addresses(subsets, port="https")[0] == Ready("srv-a", "10.201.4.7", 8443)


def test_each_replica_is_checked_and_verified_as_the_platform_servers() -> None:
    text = render_servers([Ready("srv-a", "10.201.4.7", 8443)], Path("/pki/ca.crt"))
    assert text.startswith("backend platform-servers\n")
    assert ("    server server-srv-a 10.201.4.7:8443 ssl verify required ca-file /pki/ca.crt "
            "verifyhost kubeglobe-platform alpn http/1.1 check inter 1s fall 2 rise 2") in text
    assert "option httpchk GET /readyz" in text
    # reads that met a replica going away are retried elsewhere; writes never twice
    assert "    retry-on conn-failure empty-response response-timeout" in text
    assert "    http-request disable-l7-retry if !METH_GET !METH_OPTIONS" in text
    empty = render_servers([], Path("/pki/ca.crt"))
    assert "    server " not in empty
    assert "no API server replica of the platform is ready" in empty  # its 503, as a Status


def test_replicas_are_spares_too_and_pods_not_ready_are_spares_when_none_is_ready() -> None:
    a, b = Ready("srv-a", "10.201.4.7", 8443), Ready("srv-b", "10.201.5.2", 8443)
    text = render_servers([a], Path("/pki/ca.crt"), not_ready=[b])
    # the checked replica, and itself unchecked as a backup: used once every check fails
    assert "    server server-srv-a 10.201.4.7:8443 " in text
    spare = next(line for line in text.splitlines() if "spare-srv-a" in line)
    assert spare.endswith(" backup") and " check" not in spare
    assert "srv-b" not in text  # a pod not ready is no spare while one is ready
    panic = render_servers([], Path("/pki/ca.crt"), not_ready=[b]).splitlines()
    assert [line.split()[1] for line in panic if line.startswith("    server ")] == ["spare-srv-b"]
    notready = [EndpointSubset(notReadyAddresses=[EndpointAddress(ip="10.201.5.2")],
                               ports=[EndpointPort(port=8443)])]
    assert ready_addresses(notready) == []
    assert ready_addresses(notready, not_ready=True) == [Ready("10.201.5.2", "10.201.5.2", 8443)]
