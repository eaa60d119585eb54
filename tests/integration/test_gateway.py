"""The gateway's fast path on the real platform: HAProxy answers cluster-proxy requests
itself, as the right user (imported clusters straight to their apiservers, registered
ones through the agent's own HAProxy attached by reverse HTTP), leaves the rest to the
API servers (a registered cluster whose agent is away: its tunnel), and drops tokens as
soon as the API servers would."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubeglobe.agent.apiserver_certificate import new_request
from kubeglobe.agent.credentials import CERT_KEY, KEY_KEY
from kubeglobe.gateway.identities import LEASE_SECONDS
from kubeglobe.hub.agent_certificates import load_agents_ca, sign_agent_request
from kubeglobe.hub.tokens import IssuedToken, issue_token
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.platform import agent_gateway, servers_gateway
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import (
    Platform,
    agent_detached,
    agent_pid,
    by_server,
    container_pid,
    refused_by_server,
    route,
    served,
    until,
)

PODS = "/api/v1/namespaces/default/pods"
MISSING = f"{PODS}/kg-no-such-pod"  # a 404, which no liveness probe of the controller gets


REVERSE = "kg-reverse-workload-2"
SERVERS = "platform-servers"  # the API server replicas, behind the gateway


def through_agent(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> int:
    return after["agent"][0] - before["agent"][0]


def refused_through_agent(platform: Platform, call: Callable[[], None]) -> int:
    """How many 4xx answers of `call` came down the agent's own connections."""
    before = refused_by_server(platform, REVERSE)
    call()
    return refused_by_server(platform, REVERSE)["agent"] - before["agent"]


def through_servers(before: dict[str, tuple[int, str]],
                    after: dict[str, tuple[int, str]]) -> int:
    return sum(after[s][0] - before[s][0] for s in after if s.startswith("server-"))


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


def missing(platform: Platform, token: str) -> None:
    assert get(platform, token, "workload-2", MISSING).status_code == 404


def apply_token(platform: Platform, issued: IssuedToken) -> None:
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))


def test_both_kinds_of_cluster_are_served_by_haproxy(platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    until(lambda: route(platform) == REVERSE, 60)
    before, reverse_before = served(platform), by_server(platform, REVERSE)
    for _ in range(10):
        assert get(platform, admin, "workload-1", PODS).status_code == 200
        registered = get(platform, admin, "workload-2", PODS)
        assert registered.status_code == 200
        assert len(registered.headers.get_list("date")) == 1
    after = served(platform)
    assert after["kg-cluster-workload-1"] - before["kg-cluster-workload-1"] == 10
    # The registered cluster's requests went down the agent's own connections (with the
    # controller's probes of workload-2, which take the same way: at least ours).
    assert through_agent(reverse_before, by_server(platform, REVERSE)) >= 10


def test_without_the_agents_haproxy_the_tunnel_serves_until_it_is_back(
        platform: Platform) -> None:
    """The agent's HAProxy dies: the gateway leaves the cluster to the API servers (its
    tunnel) within seconds, and takes it back once the agent restarted it."""
    admin = saved_login(platform)["token"]
    with agent_detached(platform):
        before = by_server(platform, SERVERS)
        for _ in range(5):
            assert get(platform, admin, "workload-2", PODS).status_code == 200
        assert through_servers(before, by_server(platform, SERVERS)) >= 5
    assert refused_through_agent(platform, lambda: missing(platform, admin)) == 1


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


def test_the_agents_certificate_may_only_impersonate(platform: Platform,
                                                    tmp_path: Path) -> None:
    """The client certificate the agent's HAProxy presents to its apiserver: a request
    without the gateway's impersonation is refused by the workload cluster (the agent's
    own user has no other right), and with it the impersonated user's rights apply."""
    got = json.loads(platform.env.kubectl("workload-2", "-n", "kubeglobe-system", "get",
                                          "secret", "kubeglobe-agent", "-o", "json").stdout)
    data = got["data"]
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    cert.write_bytes(base64.b64decode(data[CERT_KEY]))
    key.write_bytes(base64.b64decode(data[KEY_KEY]))
    context = ssl.create_default_context(
        cafile=str(platform.env.plan.cluster_dir("workload-2") / "pki" / "ca.crt"))
    context.load_cert_chain(str(cert), str(key))
    server = yaml.safe_load(platform.env.kubeconfig("workload-2").read_text())[
        "clusters"][0]["cluster"]["server"]
    with httpx.Client(verify=context, trust_env=False, timeout=30) as http:
        alone = http.get(f"{server}{PODS}")
        assert alone.status_code == 403, alone.text
        assert 'User "kubeglobe-agent" cannot list resource "pods"' in alone.json()["message"]
        someone = http.get(f"{server}{PODS}", headers={"Impersonate-User": "nobody"})
        assert someone.status_code == 403
        assert 'User "nobody" cannot list resource "pods"' in someone.json()["message"]


def test_the_servers_port_to_the_agents_takes_only_the_servers_certificate(
        platform: Platform) -> None:
    """The gateway's port where the API servers reach attached agents (TCP, mutual TLS):
    no certificate, or the platform's own admin certificate, is refused in the handshake;
    the servers' certificate gets through to the agent."""
    plan = platform.env.plan
    pki = ClusterPki(dir=plan.cluster_dir(GLOBAL) / "pki")
    host, port = servers_gateway(plan, plan.cluster(GLOBAL)).rsplit(":", 1)
    url = f"https://{host}:{port}/clusters/workload-2/k8s{PODS}"
    until(lambda: route(platform) == REVERSE, 60)
    for pair in (None, pki.pair("admin")):
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        if pair is not None:
            context.load_cert_chain(str(pair.cert), str(pair.key))
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(url, verify=context, trust_env=False, timeout=10)
    servers = pki.pair("platform-server-client")
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    context.load_cert_chain(str(servers.cert), str(servers.key))
    answer = httpx.get(url, verify=context, trust_env=False, timeout=30,
                       headers={"Impersonate-User": "nobody"})
    assert answer.status_code == 403, answer.text
    assert 'User "nobody" cannot list resource "pods"' in answer.json()["message"]


def test_registered_impersonation_headers_sent_by_the_caller_are_dropped(
        platform: Platform) -> None:
    issued = issue_token(user="mallet", groups=())
    apply_token(platform, issued)
    until(lambda: get(platform, issued.token, "workload-2", PODS).status_code == 403, 5)

    def spoofed() -> None:
        answer = get(platform, issued.token, "workload-2", PODS, headers={
            "Impersonate-User": "admin", "Impersonate-Group": "system:masters"})
        assert answer.status_code == 403
        assert 'User "mallet" cannot list resource "pods"' in answer.json()["message"]

    # both ways to a registered cluster: the agent's connections and the tunnel
    until(lambda: route(platform) == REVERSE, 60)
    assert refused_through_agent(platform, spoofed) == 1
    with agent_detached(platform):
        before = by_server(platform, SERVERS)
        spoofed()
        assert through_servers(before, by_server(platform, SERVERS)) >= 1


def test_without_its_agent_a_registered_cluster_is_answered_by_the_servers(
        platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    until(lambda: get(platform, admin, "workload-2", PODS).status_code == 200, 30)
    os.kill(agent_pid(platform.env), signal.SIGKILL)
    # The agent's HAProxy goes with it: the gateway sees its connections gone.
    until(lambda: route(platform) == "", 5)
    answers: list[httpx.Response] = []
    before = by_server(platform, SERVERS)

    def refused() -> bool:  # polled: the kubelet restarts the agent within seconds
        answers.append(get(platform, admin, "workload-2", PODS))
        return answers[-1].status_code == 503

    until(refused, 5)
    assert answers[-1].json()["reason"] == "ServiceUnavailable"
    assert answers[-1].headers["retry-after"] == "1"  # kubectl retries it by itself
    assert ("agent of cluster workload-2 has no tunnel to this API server replica"
            in answers[-1].json()["message"])
    assert through_servers(before, by_server(platform, SERVERS)) >= 1  # the servers said it
    took = until(lambda: get(platform, admin, "workload-2", PODS).status_code == 200, 120)
    print(f"registered cluster answered again {took:.1f}s after the servers' 503")
    until(lambda: route(platform) == REVERSE, 60)
    assert refused_through_agent(platform, lambda: missing(platform, admin)) == 1


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
    # bounded by the sync's reaction to the watch event; bench/gateway_tokens.py measures it
    took = until(lambda: get(platform, issued.token, "workload-1", PODS).status_code == 401, 5)
    print(f"the revoked token stopped {took:.2f}s later")


def test_an_expired_token_stops_at_its_expiry_without_waiting_for_a_sync(
        platform: Platform) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    issued = issue_token(user="trudy", groups=("kubeglobe:platform-admins",), expires=expires)
    apply_token(platform, issued)
    until(lambda: served_by_haproxy(platform, issued.token), 3)
    left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
    if left > 0:
        time.sleep(left)
    # HAProxy compares the expiry itself: no sync pass is needed (bench/gateway_tokens.py)
    took = until(lambda: get(platform, issued.token, "workload-1", PODS).status_code == 401, 5)
    print(f"the expired token stopped {took:.2f}s after its expiry")


def served_by_haproxy(platform: Platform, token: str) -> bool:
    before = served(platform)["kg-cluster-workload-1"]
    ok = get(platform, token, "workload-1", PODS).status_code == 200
    return ok and served(platform)["kg-cluster-workload-1"] == before + 1


@pytest.fixture(autouse=True)
def _gateway_has_synced(platform: Platform) -> None:
    until(lambda: "kg-cluster-workload-1" in served(platform), 30)


def gateway_pods(platform: Platform) -> list[str]:
    got = json.loads(platform.env.kubectl(
        GLOBAL, "-n", "kubeglobe-system", "get", "pods", "-l",
        "app.kubernetes.io/name=kubeglobe-gateway", "-o", "json").stdout)
    return sorted(p["metadata"]["name"] for p in got["items"])


def test_a_hung_sync_lets_the_fast_path_lapse_and_it_comes_back_when_it_runs(
        platform: Platform) -> None:
    """A sync that stops (here: SIGSTOP, in every gateway pod) must not leave HAProxy
    serving a stale map: the entries hold a lease, and the slow path serves meanwhile."""
    admin = saved_login(platform)["token"]
    assert served_by_haproxy(platform, admin)
    pods = gateway_pods(platform)
    assert len(pods) == 3  # one per control-plane node
    syncs = [container_pid(platform.env, GLOBAL, "kubeglobe-system", pod, "sync")
             for pod in pods]
    for pid in syncs:
        os.kill(pid, signal.SIGSTOP)
    try:
        took = until(lambda: not served_by_haproxy(platform, admin), LEASE_SECONDS + 15)
        print(f"fast path lapsed {took:.1f}s after the syncs stopped")
        assert get(platform, admin, "workload-1", PODS).status_code == 200  # the slow path
    finally:
        for pid in syncs:
            os.kill(pid, signal.SIGCONT)
    back = until(lambda: served_by_haproxy(platform, admin), 30)
    print(f"fast path back {back:.1f}s after the syncs ran again")


def test_a_killed_sync_is_restarted_by_its_kubelet(platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    pod = gateway_pods(platform)[0]

    def restarts() -> int:
        got = json.loads(platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "pod",
                                              pod, "-o", "json").stdout)
        return int(next(c["restartCount"] for c in got["status"]["containerStatuses"]
                        if c["name"] == "sync"))

    before = restarts()
    os.kill(container_pid(platform.env, GLOBAL, "kubeglobe-system", pod, "sync"),
            signal.SIGKILL)
    until(lambda: restarts() == before + 1, 60, every=1, what="the sync restarted")
    assert get(platform, admin, "workload-1", PODS).status_code == 200
    until(lambda: served_by_haproxy(platform, admin), 30)
