"""The gateway's fast path on the real platform: HAProxy answers cluster-proxy requests
itself, as the right user (imported clusters straight to their apiservers, registered
ones through the agent's own HAProxy attached by reverse HTTP, else as bytes through the
replicas' sockets and the agent's tunnel), falls back to the API servers when it
cannot, and drops tokens as soon as the API servers would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubeglobe.agent.apiserver_certificate import new_request
from kubeglobe.gateway.identities import LEASE_SECONDS
from kubeglobe.gateway.runtime import command
from kubeglobe.hub.agent_certificates import load_agents_ca, sign_agent_request
from kubeglobe.hub.tokens import IssuedToken, issue_token
from kubeglobe.local.loadbalancer import gateway_files
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.platform import agent_gateway
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import (
    Platform,
    agent_haproxy_pid,
    agent_pid,
    by_server,
    route,
    served,
)

PODS = "/api/v1/namespaces/default/pods"


TUNNEL = "kg-tunnel-workload-2"
REVERSE = "kg-reverse-workload-2"


def through_agent(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> int:
    return after["agent"][0] - before["agent"][0]


def through_tunnels(before: dict[str, tuple[int, str]],
                    after: dict[str, tuple[int, str]]) -> int:
    return sum(after[s][0] - before[s][0] for s in after if s.startswith("tunnel-"))


def through_servers(before: dict[str, tuple[int, str]],
                    after: dict[str, tuple[int, str]]) -> int:
    return sum(after[s][0] - before[s][0] for s in after if s.startswith("platform-"))


def saved_login(platform: Platform) -> dict[str, Any]:
    saved: dict[str, Any] = yaml.safe_load(platform.config.read_text())
    return saved


def get(platform: Platform, token: str, cluster: str, path: str,
        headers: dict[str, str] | None = None) -> httpx.Response:
    saved = saved_login(platform)
    url, ca = saved["server"], saved["ca_file"]
    return httpx.get(f"{url}/clusters/{cluster}/k8s{path}",
                     verify=ssl.create_default_context(cafile=ca), timeout=30,
                     trust_env=False,
                     headers={"Authorization": f"Bearer {token}", **(headers or {})})


def apply_token(platform: Platform, issued: IssuedToken) -> None:
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))


def until(check: Any, timeout: float) -> float:
    """Seconds until `check()` is true (polled every 50 ms); fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def test_both_kinds_of_cluster_are_served_by_haproxy(platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    until(lambda: route(platform) == REVERSE, 60)
    before, reverse_before = served(platform), by_server(platform, REVERSE)
    tunnel_before = by_server(platform, TUNNEL)
    for _ in range(10):
        assert get(platform, admin, "workload-1", PODS).status_code == 200
        registered = get(platform, admin, "workload-2", PODS)
        assert registered.status_code == 200
        assert len(registered.headers.get_list("date")) == 1
    after, tunnel_after = served(platform), by_server(platform, TUNNEL)
    assert after["kg-cluster-workload-1"] - before["kg-cluster-workload-1"] == 10
    # The registered cluster's requests went down the agent's own connections...
    assert through_agent(reverse_before, by_server(platform, REVERSE)) == 10
    # ... and neither through the replicas' sockets nor the servers.
    assert through_tunnels(tunnel_before, tunnel_after) == 0
    assert through_servers(tunnel_before, tunnel_after) == 0


def test_without_the_agents_haproxy_the_tunnel_serves_until_it_is_back(
        platform: Platform) -> None:
    """The agent's HAProxy dies: the gateway routes the cluster through the replicas'
    sockets and the tunnel within seconds, and back once the agent restarted it. (The
    agent port is paused meanwhile, so the restarted HAProxy cannot attach at once.)"""
    admin = saved_login(platform)["token"]
    until(lambda: route(platform) == REVERSE, 60)
    until(lambda: all(status == "UP" for s, (_, status) in by_server(platform, TUNNEL).items()
                      if s.startswith("tunnel-")), 30)
    files = gateway_files(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    asyncio.run(command(files.admin_socket(), "disable frontend kg-agents"))
    try:
        os.kill(agent_haproxy_pid(platform.env), signal.SIGKILL)
        took = until(lambda: route(platform) == TUNNEL, 5)
        print(f"tunnel route {took:.1f}s after the agent's HAProxy died")
        before = by_server(platform, TUNNEL)
        for _ in range(5):
            assert get(platform, admin, "workload-2", PODS).status_code == 200
        assert through_tunnels(before, by_server(platform, TUNNEL)) == 5
    finally:
        asyncio.run(command(files.admin_socket(), "enable frontend kg-agents"))
    back = until(lambda: route(platform) == REVERSE, 30)
    print(f"reverse route again {back:.1f}s later")
    reverse_before = by_server(platform, REVERSE)
    assert get(platform, admin, "workload-2", PODS).status_code == 200
    assert through_agent(reverse_before, by_server(platform, REVERSE)) == 1


def test_the_agent_port_refuses_connections_of_no_current_cluster(
        platform: Platform, tmp_path: Path) -> None:
    """Only a certificate naming a registered Cluster's UID attaches; one signed by the
    agents CA for a UID of no cluster (a cluster unregistered since) is dropped, and one
    without a certificate fails its handshake."""
    plan = platform.env.plan
    pki = ClusterPki(dir=plan.cluster_dir(GLOBAL) / "pki")
    ca = load_agents_ca(cert=pki.agents_ca.cert, key=pki.agents_ca.key)
    pending = new_request("workload-2")
    cert = sign_agent_request(pending.csr_pem, cluster="workload-2",
                              cluster_uid=str(uuid.uuid4()), ca=ca, now=dt.datetime.now(dt.UTC))
    host, port = agent_gateway(plan, plan.cluster(GLOBAL)).rsplit(":", 1)

    def dropped(context: ssl.SSLContext) -> bool:
        """True when the gateway ends the connection without a word of HTTP/2."""
        context.set_alpn_protocols(["h2"])
        try:
            with socket.create_connection((host, int(port)), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                return tls.recv(65536) == b""
        except (ssl.SSLError, ConnectionError):
            return True

    without = ssl.create_default_context(cafile=str(pki.ca.cert))
    assert dropped(without)
    stale = ssl.create_default_context(cafile=str(pki.ca.cert))
    cert_file, key_file = tmp_path / "stale-agent.crt", tmp_path / "stale-agent.key"
    cert_file.write_bytes(cert)
    key_file.write_bytes(pending.key_pem)
    stale.load_cert_chain(str(cert_file), str(key_file))
    assert dropped(stale)
    assert route(platform) == REVERSE  # the real agent's connections are untouched


def test_the_agents_certificate_may_only_impersonate(platform: Platform) -> None:
    """A request on a replica's socket without the gateway's impersonation is refused
    by the workload cluster: the agent's own user has no other right."""
    files = gateway_files(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    path = files.cluster_sockets(0) / "workload-2.sock"
    until(path.exists, 30)
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(30)
        raw.connect(str(path))
        raw.sendall(f"GET {PODS} HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403"), head
    assert 'User \\"kubeglobe-agent\\" cannot list resource \\"pods\\"' in body.decode(), body


def test_registered_impersonation_headers_sent_by_the_caller_are_dropped(
        platform: Platform) -> None:
    issued = issue_token(user="mallet", groups=())
    apply_token(platform, issued)
    until(lambda: get(platform, issued.token, "workload-2", PODS).status_code == 403, 5)
    for backend, count in ((REVERSE, through_agent), (TUNNEL, through_tunnels)):
        # both of a registered cluster's HAProxy paths: the agent's and the tunnel's
        until(lambda b=backend: route(platform) == b, 60)
        before = by_server(platform, backend)
        spoofed = get(platform, issued.token, "workload-2", PODS, headers={
            "Impersonate-User": "admin", "Impersonate-Group": "system:masters"})
        assert spoofed.status_code == 403
        assert 'User "mallet" cannot list resource "pods"' in spoofed.json()["message"]
        assert count(before, by_server(platform, backend)) == 1
        if backend == REVERSE:
            os.kill(agent_haproxy_pid(platform.env), signal.SIGKILL)


def test_without_its_agent_a_registered_cluster_is_answered_by_the_servers(
        platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    until(lambda: get(platform, admin, "workload-2", PODS).status_code == 200, 30)
    before = by_server(platform, TUNNEL)
    os.kill(agent_pid(platform.env), signal.SIGKILL)
    # The replicas close the cluster's sockets with the tunnel; HAProxy's checks see it,
    # and the gateway sees the agent's own connections gone.
    until(lambda: all(status != "UP" for s, (_, status) in by_server(platform, TUNNEL).items()
                      if s.startswith("tunnel-")), 5)
    until(lambda: route(platform) == TUNNEL, 5)
    answers: list[httpx.Response] = []

    def refused() -> bool:  # polled: the kubelet restarts the agent within seconds
        answers.append(get(platform, admin, "workload-2", PODS))
        return answers[-1].status_code == 503

    until(refused, 5)
    assert "agent of cluster workload-2 is not connected" in answers[-1].json()["message"]
    assert through_servers(before, by_server(platform, TUNNEL)) >= 1  # the servers said it
    took = until(lambda: get(platform, admin, "workload-2", PODS).status_code == 200, 120)
    print(f"registered cluster answered again {took:.1f}s after the servers' 503")
    until(lambda: any(status == "UP" for s, (_, status) in by_server(platform, TUNNEL).items()
                      if s.startswith("tunnel-")), 30)
    until(lambda: route(platform) == REVERSE, 60)
    again = by_server(platform, REVERSE)
    assert get(platform, admin, "workload-2", PODS).status_code == 200
    assert through_agent(again, by_server(platform, REVERSE)) == 1


def test_impersonation_headers_sent_by_the_caller_are_dropped(platform: Platform) -> None:
    issued = issue_token(user="mallory", groups=())
    apply_token(platform, issued)
    until(lambda: get(platform, issued.token, "workload-1", PODS).status_code == 403, 5)
    before = served(platform)["kg-cluster-workload-1"]
    spoofed = get(platform, issued.token, "workload-1", PODS,
                  headers={"Impersonate-User": "admin", "Impersonate-Group": "system:masters",
                           "impersonate-extra-scopes": "all"})
    assert spoofed.status_code == 403
    assert 'User "mallory" cannot list resource "pods"' in spoofed.json()["message"]
    assert served(platform)["kg-cluster-workload-1"] == before + 1  # HAProxy said it


def test_a_revoked_token_stops_on_the_fast_path_within_a_second(platform: Platform) -> None:
    issued = issue_token(user="trent", groups=("kubeglobe:platform-admins",))
    apply_token(platform, issued)
    until(lambda: served_by_haproxy(platform, issued.token), 5)
    platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "delete", "secret",
                         issued.secret_name)
    took = until(lambda: get(platform, issued.token, "workload-1", PODS).status_code == 401, 5)
    assert took <= 1.0, f"the revoked token still worked {took:.2f}s later"


def test_an_expired_token_stops_at_its_expiry_without_waiting_for_a_sync(
        platform: Platform) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    issued = issue_token(user="trudy", groups=("kubeglobe:platform-admins",), expires=expires)
    apply_token(platform, issued)
    until(lambda: served_by_haproxy(platform, issued.token), 3)
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
    if left > 0:
        time.sleep(left)
    took = until(lambda: get(platform, issued.token, "workload-1", PODS).status_code == 401, 5)
    assert took <= 1.0, f"the expired token still worked {took:.2f}s after its expiry"


def served_by_haproxy(platform: Platform, token: str) -> bool:
    before = served(platform)["kg-cluster-workload-1"]
    ok = get(platform, token, "workload-1", PODS).status_code == 200
    return ok and served(platform)["kg-cluster-workload-1"] == before + 1


@pytest.fixture(autouse=True)
def _gateway_has_synced(platform: Platform) -> None:
    until(lambda: "kg-cluster-workload-1" in served(platform), 30)


def test_without_its_sync_the_fast_path_lapses_and_up_brings_it_back(
        platform: Platform) -> None:
    """A dead sync must not leave HAProxy serving a stale map: entries hold a lease."""
    admin = saved_login(platform)["token"]
    assert served_by_haproxy(platform, admin)
    state = load_state(platform.env.plan.state_dir)
    assert state is not None
    record = state.processes["global/kubeglobe-gateway"]
    os.kill(record.pid, signal.SIGKILL)
    try:
        took = until(lambda: not served_by_haproxy(platform, admin), LEASE_SECONDS + 15)
        print(f"fast path lapsed {took:.1f}s after the sync died")
        assert get(platform, admin, "workload-1", PODS).status_code == 200  # the slow path
    finally:
        platform.env.up()
    until(lambda: served_by_haproxy(platform, admin), 30)
