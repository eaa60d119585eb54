"""Cluster management against real clusters: import, inventory, health, proxy, failover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeglobe.hub.tokens import issue_token
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.process import stop_process
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import STATE_DIR, Env


@dataclass
class Platform:
    env: Env
    config: Path
    workdir: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "kubeglobe.cli.main", *args], capture_output=True,
            text=True, timeout=120, env={**os.environ, "KUBEGLOBE_CONFIG": str(self.config),
                                         "COLUMNS": "200"},
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubeglobe {' '.join(args)}: {done.stderr.strip()}")
        return done

    def cluster(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.cli("cluster", "get", name, "-o", "json").stdout)
        return got

    def wait_phase(self, name: str, phase: str, timeout: float) -> float:
        """Seconds until cluster `name` shows `phase` (fails after `timeout`)."""
        started = time.monotonic()
        seen = None
        while time.monotonic() - started < timeout:
            seen = self.cluster(name)["status"]["phase"]
            if seen == phase:
                return time.monotonic() - started
            time.sleep(1)
        raise AssertionError(f"cluster {name} still {seen} after {timeout}s, wanted {phase}")

    def proxy_kubeconfig(self, cluster: str, token: str | None = None) -> Path:
        path = self.workdir / f"{cluster}-{'admin' if token is None else 'user'}.kubeconfig"
        self.cli("kubeconfig", "--cluster", cluster, "--output", str(path))
        if token is not None:
            doc = yaml.safe_load(path.read_text())
            doc["users"][0]["user"]["token"] = token
            path.write_text(yaml.safe_dump(doc))
        return path

    def kubectl(self, kubeconfig: Path, *args: str,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.env.kubectl_bin, f"--kubeconfig={kubeconfig}", *args],
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done


@pytest.fixture(scope="module")
def platform(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("platform")
    p = Platform(env=env, config=work / "config.yaml", workdir=work)
    token = admin_token_file(env.plan).read_text().strip()
    ca = env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    p.cli("login", "--server", api_url(env.plan, env.plan.cluster(GLOBAL)), "--token", token,
          "--ca-file", str(ca))
    yield p


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
    assert done.returncode == 2 and "is not valid" in done.stderr
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


def test_proxy_serves_kubectl_get_apply_logs_and_watch(platform: Platform) -> None:
    kc = platform.proxy_kubeconfig("workload-1")
    nodes = platform.kubectl(kc, "get", "nodes", "-o", "name").stdout
    assert nodes.strip() == "node/workload-1-node-1"
    manifest = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"via-proxy",'
                '"namespace":"default"},"data":{"k":"v"}}')
    applied = subprocess.run([platform.env.kubectl_bin, f"--kubeconfig={kc}", "apply", "-f",
                              "-"], input=manifest, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    direct = platform.env.kubectl("workload-1", "get", "configmap", "via-proxy", "-o",
                                  "jsonpath={.data.k}").stdout
    assert direct == "v"

    watch = subprocess.Popen([platform.env.kubectl_bin, f"--kubeconfig={kc}", "get",
                              "configmaps", "-w", "--output-watch-events", "-o", "name"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        platform.env.kubectl("workload-1", "create", "configmap", "watched-event")
        deadline = time.monotonic() + 30
        lines: list[str] = []
        assert watch.stdout is not None
        os.set_blocking(watch.stdout.fileno(), False)
        while time.monotonic() < deadline and not any("watched-event" in ln for ln in lines):
            chunk = watch.stdout.read()
            if chunk:
                lines += chunk.splitlines()
            time.sleep(0.2)
        # Created after the watch started: only the watch stream can have carried it.
        assert "configmap/watched-event" in lines, lines
    finally:
        watch.terminate()
        watch.wait(timeout=10)

    platform.kubectl(kc, "run", "logger", "--image=kubeglobe.local/busybox-httpd:1.0",
                     "--image-pull-policy=IfNotPresent")
    platform.kubectl(kc, "wait", "pod/logger", "--for=condition=Ready", "--timeout=90s")
    assert "serving /www on :8080" in platform.kubectl(kc, "logs", "logger").stdout


def test_impersonation_lets_the_workload_cluster_decide(platform: Platform) -> None:
    issued = issue_token(user="bob", groups=())
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))
    kc = platform.proxy_kubeconfig("workload-1", token=issued.token)
    denied = platform.kubectl(kc, "get", "pods", "-n", "default", check=False)
    assert denied.returncode != 0
    assert 'User "bob" cannot list resource "pods"' in denied.stderr
    platform.env.kubectl("workload-1", "create", "rolebinding", "bob-view", "--clusterrole=view",
                         "--user=bob", "--namespace=default")
    allowed = platform.kubectl(kc, "get", "pods", "-n", "default", "-o", "name")
    assert "pod/logger" in allowed.stdout


def test_lost_cluster_goes_unavailable_and_comes_back(platform: Platform) -> None:
    platform.wait_phase("workload-1", "Ready", timeout=60)
    stop_process(_record("workload-1/apiserver-0"))
    try:
        lost_after = platform.wait_phase("workload-1", "Unavailable", timeout=45)
        print(f"workload-1 detected Unavailable after {lost_after:.1f}s")
        message = platform.cluster("workload-1")["status"]["message"]
        assert "no heartbeat" in message
    finally:
        platform.env.up()
    platform.wait_phase("workload-1", "Ready", timeout=90)


def test_killed_controller_leader_is_replaced(platform: Platform) -> None:
    def holder() -> str:
        return platform.env.kubectl(
            GLOBAL, "-n", "kubeglobe-system", "get", "lease", "kubeglobe-controller", "-o",
            "jsonpath={.spec.holderIdentity}").stdout

    leader = holder()
    pid = int(leader.rsplit("-", 1)[1])
    key = next(k for k in ("global/kubeglobe-controller-0", "global/kubeglobe-controller-1")
               if _record(k).pid == pid)
    before = platform.cluster("workload-1")["status"]["lastHeartbeatTime"]
    os.kill(pid, 9)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 30 and holder() == leader:
            time.sleep(0.5)
        took = time.monotonic() - started
        print(f"new controller leader after {took:.1f}s")
        assert holder() != leader
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if platform.cluster("workload-1")["status"]["lastHeartbeatTime"] != before:
                break
            time.sleep(1)
        assert platform.cluster("workload-1")["status"]["lastHeartbeatTime"] != before
    finally:
        platform.env.up()
    assert key


def test_import_then_unregister_cleans_the_cluster(platform: Platform) -> None:
    platform.cli("cluster", "import", "workload-2", "--kubeconfig",
                 str(platform.env.kubeconfig("workload-2")))
    platform.wait_phase("workload-2", "Ready", timeout=60)
    binding = platform.env.kubectl("workload-2", "get", "clusterrolebinding",
                                   "kubeglobe:platform-admins", "-o", "name", check=False)
    assert binding.returncode == 0
    platform.cli("cluster", "unregister", "workload-2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        gone = platform.env.kubectl(GLOBAL, "get", "clusters.kubeglobe.io", "workload-2",
                                    check=False)
        if gone.returncode != 0:
            break
        time.sleep(1)
    assert "NotFound" in gone.stderr
    left = platform.env.kubectl("workload-2", "get", "clusterrolebinding",
                                "kubeglobe:platform-admins", check=False)
    assert left.returncode != 0 and "NotFound" in left.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        secret = platform.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secret",
                                      "cluster-workload-2-kubeconfig", check=False)
        if secret.returncode != 0:
            break
        time.sleep(1)
    assert "NotFound" in secret.stderr
