"""The gateway's fast path on the real platform: HAProxy answers cluster-proxy requests
for imported clusters itself, as the right user, and drops tokens as soon as the API
servers would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
from typing import Any

import httpx
import pytest
import yaml

from kubeglobe.gateway.identities import LEASE_SECONDS
from kubeglobe.gateway.runtime import command
from kubeglobe.hub.tokens import IssuedToken, issue_token
from kubeglobe.local.loadbalancer import gateway_files
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Platform

PODS = "/api/v1/namespaces/default/pods"


def served(platform: Platform) -> dict[str, int]:
    """Requests each HAProxy backend has served (`show stat`, column stot)."""
    files = gateway_files(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    out = asyncio.run(command(files.admin_socket(), "show stat"))
    return {row.split(",")[0]: int(row.split(",")[7]) for row in out.splitlines()
            if row.count(",") > 8 and row.split(",")[1] == "BACKEND"}


def saved_login(platform: Platform) -> dict[str, Any]:
    saved: dict[str, Any] = yaml.safe_load(platform.config.read_text())
    return saved


def get(platform: Platform, token: str, cluster: str, path: str,
        headers: dict[str, str] | None = None) -> httpx.Response:
    saved = saved_login(platform)
    url, ca = saved["server"], saved["ca_file"]
    return httpx.get(f"{url}/clusters/{cluster}/k8s{path}", verify=ca, timeout=30,
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


def test_imported_clusters_are_served_by_haproxy_registered_ones_by_the_servers(
        platform: Platform) -> None:
    admin = saved_login(platform)["token"]
    before = served(platform)
    for _ in range(10):
        assert get(platform, admin, "workload-1", PODS).status_code == 200
        registered = get(platform, admin, "workload-2", PODS)
        assert registered.status_code == 200
        assert len(registered.headers.get_list("date")) == 1  # the apiserver's is dropped
    after = served(platform)
    assert after["kg-cluster-workload-1"] - before["kg-cluster-workload-1"] == 10
    assert after["platform-servers"] - before["platform-servers"] >= 10
    assert "kg-cluster-workload-2" not in after  # a tunnel lives in the servers only


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
