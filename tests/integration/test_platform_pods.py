"""The platform's API servers are pods that Kubernetes replaces: deleting one while
eight clients read through the API loses no request (a read that meets the replica
going away is sent again to the other), and the gateway follows the replicas as they
come and go."""

from __future__ import annotations

import json
import ssl
import threading
import time
from typing import Any

import httpx
import yaml

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Platform, by_server, until

CLIENTS = 8


def _server_pods(platform: Platform) -> list[dict[str, Any]]:
    got = json.loads(platform.env.kubectl(
        GLOBAL, "-n", SYSTEM_NAMESPACE, "get", "pods", "-l",
        "app.kubernetes.io/name=kubeglobe-server", "-o", "json").stdout)
    pods: list[dict[str, Any]] = got["items"]
    return pods


def _ready(pod: dict[str, Any]) -> bool:
    return "deletionTimestamp" not in pod["metadata"] and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", []))


def test_a_server_pod_deleted_under_eight_clients_loses_no_request(
        platform: Platform) -> None:
    saved = yaml.safe_load(platform.config.read_text())
    context = ssl.create_default_context(cafile=saved["ca_file"])
    headers = {"Authorization": f"Bearer {saved['token']}"}
    until(lambda: sum(map(_ready, _server_pods(platform))) == 2, 60, every=1,
          what="two server pods ready")
    before = {p["metadata"]["name"] for p in _server_pods(platform)}
    stop = threading.Event()
    answered = [0] * CLIENTS
    failed: list[str] = []

    def client(i: int) -> None:
        with httpx.Client(verify=context, trust_env=False, timeout=15) as http:
            while not stop.is_set():  # bounded: the test sets `stop` within two minutes
                try:
                    r = http.get(f"{saved['server']}/api/v1/clusters", headers=headers)
                    if r.status_code == 200:
                        answered[i] += 1
                    else:
                        failed.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    failed.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        victim = sorted(before)[0]
        platform.env.kubectl(GLOBAL, "-n", SYSTEM_NAMESPACE, "delete", "pod", victim,
                             "--wait=false")
        deleted_at = time.monotonic()

        def replaced() -> bool:
            pods = _server_pods(platform)
            names = {p["metadata"]["name"] for p in pods}
            return (victim not in names and sum(map(_ready, pods)) == 2
                    and len(names - before) == 1)

        took = until(replaced, 120, every=1, what="the deleted server pod replaced")
        # ... and the gateway sends to the new one (its server in platform-servers)
        new = next(iter({p["metadata"]["name"] for p in _server_pods(platform)} - before))
        until(lambda: f"server-{new}" in by_server(platform, "platform-servers"), 30,
              every=0.5, what="the gateway's backend to name the new replica")
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    total = sum(answered)
    print(f"server pod {victim} deleted: replaced after {took:.1f}s; {total} requests "
          f"answered, {len(failed)} failed: {failed[:5]}")
    assert all(n > 0 for n in answered)  # every client kept being served
    assert failed == []  # reads in flight on the leaving pod were answered by the other
    assert not any(name.endswith(victim) for name in by_server(platform, "platform-servers"))
    assert time.monotonic() - deleted_at < 150
