"""Cluster management against real clusters: import, inventory, health, proxy, failover."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import select
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.registration import issue_bootstrap_token
from kubeglobe.hub.tokens import issue_token
from kubeglobe.kube.client import async_client, load_kubeconfig
from kubeglobe.local.apply import wait_rolled_out
from kubeglobe.local.network import set_node_link
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.process import stop_process
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import (
    STATE_DIR,
    Platform,
    agent_pid,
    container_pid,
    replica_get,
    server_replicas,
    until,
)


def _record(key: str) -> Any:
    state = load_state(STATE_DIR)
    assert state is not None
    return state.processes[key]


def test_imported_cluster_is_ready_with_inventory_in_every_view(platform: Platform) -> None:
    platform.wait_phase("workload-1", "Ready", timeout=60)
    via_cli = platform.cluster("workload-1")
    status = via_cli["status"]
    assert status["kubernetesVersion"] == "v1.20.2"
    assert status["nodeCount"] == 1 and status["readyNodeCount"] == 1
    assert int(status["capacity"]["cpu"]) >= 1 and status["lastHeartbeatTime"]
    via_kubectl = json.loads(platform.env.kubectl(
        GLOBAL, "get", "clusters.kubeglobe.io", "workload-1", "-o", "json").stdout)
    assert via_kubectl["status"]["phase"] == "Ready"
    assert via_kubectl["status"]["kubernetesVersion"] == status["kubernetesVersion"]
    listed = platform.cli("cluster", "list").stdout
    assert "workload-1" in listed and "Ready" in listed


def test_refused_imports_leave_nothing_behind(platform: Platform) -> None:
    garbage = platform.workdir / "garbage.kubeconfig"
    garbage.write_text("this: is not a kubeconfig\n")
    done = platform.cli("cluster", "import", "bad-one", "--kubeconfig", str(garbage),
                        check=False)
    assert done.returncode == 2 and "bad kubeconfig" in done.stderr

    unreachable = platform.workdir / "unreachable.kubeconfig"
    real = platform.env.kubeconfig("workload-2").read_text()
    host = platform.env.plan.host_ip
    port = platform.env.plan.cluster("workload-2").endpoint_port
    unreachable.write_text(real.replace(f"{host}:{port}", "127.0.0.1:1"))
    done = platform.cli("cluster", "import", "bad-two", "--kubeconfig", str(unreachable),
                        check=False)
    assert done.returncode == 2 and "cannot reach cluster bad-two" in done.stderr

    done = platform.cli("cluster", "import", "Bad_Name", "--kubeconfig", str(garbage),
                        check=False)
    assert done.returncode == 2 and "is not a valid DNS-1123 label" in done.stderr
    done = platform.cli("cluster", "import", "workload-1", "--kubeconfig",
                        str(platform.env.kubeconfig("workload-1")), check=False)
    assert done.returncode == 2 and "already exists" in done.stderr
    done = platform.cli("cluster", "get", "nope", check=False)
    assert done.returncode == 2 and "cluster nope not found" in done.stderr

    names = platform.env.kubectl(GLOBAL, "get", "clusters.kubeglobe.io", "-o", "name").stdout
    secrets = platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secrets",
                                   "-o", "name").stdout
    for leftover in ("bad-one", "bad-two", "bad_name"):
        assert leftover not in names.lower() and leftover not in secrets.lower()


BOTH = pytest.mark.parametrize("cluster", ["workload-1", "workload-2"])  # import, register


@BOTH
def test_proxy_serves_kubectl_get_apply_logs_and_watch(platform: Platform, cluster: str) -> None:
    kc = platform.proxy_kubeconfig(cluster)
    nodes = platform.kubectl(kc, "get", "nodes", "-o", "name").stdout
    assert nodes.strip() == f"node/{cluster}-node-1"
    manifest = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"via-proxy",'
                '"namespace":"default"},"data":{"k":"v"}}')
    applied = subprocess.run([platform.env.kubectl_bin, f"--kubeconfig={kc}", "apply", "-f",
                              "-"], input=manifest, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    direct = platform.env.kubectl(cluster, "get", "configmap", "via-proxy", "-o",
                                  "jsonpath={.data.k}").stdout
    assert direct == "v"

    watch = subprocess.Popen([platform.env.kubectl_bin, f"--kubeconfig={kc}", "get",
                              "configmaps", "-w", "--output-watch-events", "-o", "name"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert watch.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"configmap/" not in seen:  # the watch lists what exists first: it is running
            assert time.monotonic() < deadline, f"the watch printed nothing: {seen!r}"
            if select.select([watch.stdout], [], [], 0.2)[0]:
                seen += os.read(watch.stdout.fileno(), 65536)
        platform.env.kubectl(cluster, "create", "configmap", "watched-event")
        deadline = time.monotonic() + 30
        while b"watched-event" not in seen and time.monotonic() < deadline:
            if select.select([watch.stdout], [], [], 0.2)[0]:
                seen += os.read(watch.stdout.fileno(), 65536)
        lines = seen.decode().splitlines()
        # Created after the watch started: only the watch stream can have carried it.
        assert "configmap/watched-event" in lines, lines
    finally:
        watch.terminate()
        watch.wait(timeout=10)

    platform.kubectl(kc, "run", "logger", "--image=kubeglobe.local/busybox-httpd:1.0",
                     "--image-pull-policy=IfNotPresent")
    platform.kubectl(kc, "wait", "pod/logger", "--for=condition=Ready", "--timeout=90s")
    assert "serving /www on :8080" in platform.kubectl(kc, "logs", "logger").stdout


@BOTH
def test_impersonation_lets_the_workload_cluster_decide(platform: Platform, cluster: str) -> None:
    issued = issue_token(user="bob", groups=())
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))
    kc = platform.proxy_kubeconfig(cluster, token=issued.token)
    denied = platform.kubectl(kc, "get", "pods", "-n", "default", check=False)
    assert denied.returncode != 0
    assert 'User "bob" cannot list resource "pods"' in denied.stderr
    platform.env.kubectl(cluster, "create", "rolebinding", "bob-view", "--clusterrole=view",
                         "--user=bob", "--namespace=default")
    allowed = platform.kubectl(kc, "get", "pods", "-n", "default", "-o", "name")
    assert "pod/logger" in allowed.stdout


@BOTH
def test_lost_cluster_goes_unavailable_and_comes_back(platform: Platform, cluster: str) -> None:
    platform.wait_phase(cluster, "Ready", timeout=60)
    stop_process(_record(f"{cluster}/apiserver-0"))
    try:
        lost_after = platform.wait_phase(cluster, "Unavailable", timeout=45)
        print(f"{cluster} detected Unavailable after {lost_after:.1f}s")
        message = platform.cluster(cluster)["status"]["message"]
        assert "no answer for" in message
        # Meanwhile a caller gets a Status naming the cluster (kubectl prints its message)
        # from the gateway itself: no HTML error page, no hang.
        failed = _get(platform, f"/clusters/{cluster}/k8s/api/v1/namespaces/default/pods")
        assert failed.status_code in (502, 503, 504), failed.text
        status = failed.json()
        assert status["kind"] == "Status" and status["code"] == failed.status_code
        assert f"cluster {cluster}" in status["message"], status
        print(f"{cluster} while lost: {failed.status_code} {status['message']}")
    finally:
        platform.env.up()
    platform.wait_phase(cluster, "Ready", timeout=90)


def test_killed_controller_leader_is_replaced(platform: Platform) -> None:
    """The leader's process dies at once (SIGKILL: no Lease given back, as in a crash):
    the standby pod takes the Lease when it runs out and acts, and the kubelet restarts
    the killed container."""
    def holder() -> str:
        return platform.env.kubectl(
            GLOBAL, "-n", SYSTEM_NAMESPACE, "get", "lease", "kubeglobe-controller", "-o",
            "jsonpath={.spec.holderIdentity}").stdout

    leader = holder()
    pod = leader.split("_", 1)[0]  # the identity is the pod's host name and a random id
    before = platform.cluster("workload-1")["status"]["lastHeartbeatTime"]
    os.kill(container_pid(platform.env, GLOBAL, SYSTEM_NAMESPACE, pod), signal.SIGKILL)
    took = until(lambda: holder() not in ("", leader), 30, every=0.5, what="a new leader")
    print(f"new controller leader after {took:.1f}s: {holder()} (was {leader})")
    acted = until(lambda: platform.cluster("workload-1")["status"]["lastHeartbeatTime"]
                  != before, 30, every=0.5, what="a heartbeat by the new leader")
    print(f"...and its first heartbeat {acted:.1f}s after that")
    wait_rolled_out(platform.env.kubeconfig(GLOBAL), name="kubeglobe-controller",
                    namespace=SYSTEM_NAMESPACE, what="the controller Deployment")


def test_registered_cluster_is_reached_only_through_its_agent(platform: Platform) -> None:
    platform.wait_phase("workload-2", "Ready", timeout=90)
    cluster = platform.cluster("workload-2")
    assert cluster["spec"]["mode"] == "register"
    assert cluster["status"]["kubernetesVersion"] == "v1.20.2"
    assert cluster["status"]["nodeCount"] == 1
    secrets = platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secrets",
                                   "-l", "kubeglobe.io/cluster=workload-2", "-o", "name").stdout
    # The hub holds the agent's credential (hashed) and no kubeconfig of the cluster.
    assert secrets.split() == ["secret/cluster-workload-2-agent"]
    # The agent keeps a tunnel to every API server replica: each says so in its metrics.
    replicas = [f"{url}/metrics" for url in server_replicas(platform.env)]
    assert len(replicas) == 2  # the kubeglobe-server Deployment's
    held = 'kubeglobe_agent_tunnels{cluster="workload-2"} 1.0'
    deadline = time.monotonic() + 60
    while True:
        holding = [url for url in replicas if held in replica_get(platform.env, url).text]
        if holding == replicas or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert holding == replicas


def _proxy_works(platform: Platform, kc: Path, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if platform.kubectl(kc, "get", "nodes", "-o", "name", check=False).returncode == 0:
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"no answer through the tunnel within {timeout}s")


def test_killed_agent_comes_back_by_itself(platform: Platform) -> None:
    kc = platform.proxy_kubeconfig("workload-2")
    _proxy_works(platform, kc, timeout=30)
    os.kill(agent_pid(platform.env), 9)
    took = _proxy_works(platform, kc, timeout=90)
    print(f"agent back after {took:.1f}s")
    restarts = platform.env.kubectl("workload-2", "-n", "kubeglobe-system", "get", "pods", "-o",
                                    "jsonpath={.items[0].status.containerStatuses[0]"
                                    ".restartCount}").stdout
    assert int(restarts) >= 1


def test_agent_reconnects_after_a_network_cut(platform: Platform) -> None:
    kc = platform.proxy_kubeconfig("workload-2")
    node = platform.env.plan.cluster("workload-2").nodes[0]
    set_node_link(node, up=False)
    try:
        time.sleep(25)  # longer than the tunnel's ping timeout: the agent sees it broken
    finally:
        set_node_link(node, up=True)
    took = _proxy_works(platform, kc, timeout=90)
    print(f"tunnel back {took:.1f}s after the wire")
    platform.wait_phase("workload-2", "Ready", timeout=60)


def _get(platform: Platform, path: str) -> httpx.Response:
    """GET through the platform endpoint with the admin's token."""
    ca = platform.env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    url = api_url(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    token = admin_token_file(platform.env.plan).read_text().strip()
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False,
                      timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        return http.get(url + path)


def _post(platform: Platform, path: str, body: dict[str, Any]) -> httpx.Response:
    ca = platform.env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    url = api_url(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False,
                      timeout=30) as http:
        return http.post(url + path, json=body)


def test_the_proxy_refuses_bad_and_unknown_cluster_names_with_a_status(
        platform: Platform) -> None:
    for path, code, says in (("/clusters/Bad_Name/k8s/api", 422, "is not a valid DNS-1123"),
                             ("/clusters/no-such-cluster/k8s/api", 404, "not found")):
        answer = _get(platform, path)
        assert answer.status_code == code, answer.text
        status = answer.json()
        assert status["kind"] == "Status" and status["code"] == code, status
        assert says in status["message"], status


def test_bootstrap_tokens_are_one_time_and_expire(platform: Platform) -> None:
    answer = json.loads(platform.cli("cluster", "register", "spare", "-o", "json").stdout)
    token = answer["bootstrapToken"]
    assert "kind: Deployment" in answer["manifest"]
    assert base64.b64encode(token.encode()).decode() in answer["manifest"]
    first = _post(platform, "/api/v1/agent/register", {"cluster": "spare",
                                                       "bootstrapToken": token})
    assert first.status_code == 200 and first.json()["credential"].startswith("kga_")
    again = _post(platform, "/api/v1/agent/register", {"cluster": "spare",
                                                       "bootstrapToken": token})
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    wrong = _post(platform, "/api/v1/agent/register", {"cluster": "nope",
                                                       "bootstrapToken": token})
    assert wrong.status_code == 401

    async def stale_token() -> str:
        hub = async_client(load_kubeconfig(path=platform.env.kubeconfig(GLOBAL)))
        try:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
            return await issue_bootstrap_token(hub=hub, cluster="spare", now=past)
        finally:
            await hub.close()

    expired = _post(platform, "/api/v1/agent/register", {"cluster": "spare",
                                                         "bootstrapToken": asyncio.run(
                                                             stale_token())})
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    platform.cli("cluster", "unregister", "spare")
    _wait_gone(platform, "spare")


def _wait_gone(platform: Platform, name: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = platform.env.kubectl(GLOBAL, "get", "clusters.kubeglobe.io", name, check=False)
        if got.returncode != 0 and "NotFound" in got.stderr:
            return
        time.sleep(1)
    raise AssertionError(f"cluster {name} still there after 90s")


def _wait_absent(platform: Platform, cluster: str, *args: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        got = platform.env.kubectl(cluster, "get", *args, "-o", "name", check=False)
        if got.returncode != 0 and "NotFound" in got.stderr:
            return
        time.sleep(1)
    raise AssertionError(f"{args} still on {cluster} after 90s")


def test_unregister_removes_what_the_platform_created_then_up_brings_them_back(
        platform: Platform) -> None:
    platform.cli("cluster", "unregister", "workload-2")
    platform.cli("cluster", "unregister", "workload-1")
    for name in ("workload-1", "workload-2"):
        _wait_gone(platform, name)
    _wait_absent(platform, "workload-1", "clusterrolebinding", "kubeglobe:platform-admins")
    _wait_absent(platform, "workload-2", "namespace", "kubeglobe-system")
    _wait_absent(platform, "workload-2", "clusterrolebinding", "kubeglobe-agent")
    _wait_absent(platform, "workload-2", "clusterrolebinding", "kubeglobe:platform-admins")
    left = platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secrets", "-o",
                                "name").stdout
    assert "workload-1" not in left and "workload-2" not in left
    platform.env.up()  # onboards both again
    assert platform.cluster("workload-1")["status"]["phase"] == "Ready"
    assert platform.cluster("workload-2")["status"]["phase"] == "Ready"


def test_a_cluster_written_past_the_api_with_a_bad_spec_is_refused_not_a_500(
        platform: Platform) -> None:
    """kubectl can write a Cluster the API would refuse (import mode, no kubeconfig): the
    listing still answers, without it, and reading it says what is wrong."""
    bad = {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "Cluster",
           "metadata": {"name": "half-made"}, "spec": {"mode": "import"}}
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(bad))
    try:
        listed = _get(platform, "/api/v1/clusters")
        assert listed.status_code == 200
        names = [c["name"] for c in listed.json()["items"]]
        assert "workload-1" in names and "half-made" not in names
        one = _get(platform, "/api/v1/clusters/half-made")
        assert one.status_code == 409
        assert "kubeconfigSecretRef" in one.json()["detail"]
    finally:
        platform.env.kubectl(GLOBAL, "delete", "cluster", "half-made", "--wait=false")
