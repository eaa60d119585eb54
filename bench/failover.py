"""How the platform heals from the faults of issue 15: seconds, and requests that failed.

Run: .venv/bin/python bench/failover.py [--rounds N] [--cut-seconds S]
Starts its own environment (a scratch state directory, its own slot), then N rounds of:
- the controller leader killed (SIGKILL of its container's process, as a crash: no
  Lease given back): seconds until another replica holds the Lease, and until the new
  leader has written a Cluster heartbeat;
- an API server pod deleted while 8 clients read the platform API (GET /api/v1/clusters,
  through the gateway): requests answered and failed, seconds until it is replaced;
- a global control-plane node host cut off the network (its veth down) for S seconds
  while a writer creates a ConfigMap through the global endpoint every 0.2 s: writes
  that failed, acknowledged writes lost (read back after the link is back: the target
  is 0), and seconds until the cut etcd member has every write.
Tears everything down. Targets: controller failover <= 15 s; API server pod loss: 0
failed requests beyond those in flight; 0 lost acknowledged writes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.local import environment
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.network import set_node_link
from kubeglobe.local.node import NodePaths
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

Kubectl = Callable[..., str]


def _kubectl(plan: EnvironmentPlan, binary: str) -> Kubectl:
    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run([binary, f"--kubeconfig={environment.admin_kubeconfig(plan, GLOBAL)}",
                               *args], capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout
    return run


def _until(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"not within {timeout} s")


def _container_pid(plan: EnvironmentPlan, kubectl: Kubectl, pod: str) -> int:
    got = json.loads(kubectl("-n", SYSTEM_NAMESPACE, "get", "pod", pod, "-o", "json"))
    node = next(n for n in plan.cluster(GLOBAL).nodes if n.name == got["spec"]["nodeName"])
    container = got["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    tasks = subprocess.run(["ctr", "--address", str(NodePaths(plan, node).socket),
                            "--namespace", "k8s.io", "tasks", "ls"], capture_output=True,
                           text=True, check=True, timeout=30).stdout
    return next(int(line.split()[1]) for line in tasks.splitlines()[1:]
                if line.split()[0] == container)


def controller_failover(plan: EnvironmentPlan, kubectl: Kubectl) -> tuple[float, float]:
    def holder() -> str:
        return kubectl("-n", SYSTEM_NAMESPACE, "get", "lease", "kubeglobe-controller", "-o",
                       "jsonpath={.spec.holderIdentity}")

    def heartbeat() -> str:
        return kubectl("get", "clusters.kubeglobe.io", "workload-1", "-o",
                       "jsonpath={.status.lastHeartbeatTime}")

    leader, before = holder(), heartbeat()
    os.kill(_container_pid(plan, kubectl, leader.split("_", 1)[0]), signal.SIGKILL)
    started = time.monotonic()
    _until(lambda: holder() not in ("", leader), 60)
    took = time.monotonic() - started
    _until(lambda: heartbeat() != before, 60)
    acted = time.monotonic() - started
    _until(lambda: kubectl("-n", SYSTEM_NAMESPACE, "get", "deployment", "kubeglobe-controller",
                           "-o", "jsonpath={.status.availableReplicas}") == "2", 120)
    return took, acted


def server_pod_loss(plan: EnvironmentPlan, kubectl: Kubectl,
                    clients: int = 8) -> tuple[int, int, float]:
    """(requests answered, requests failed, seconds until the pod was replaced)."""
    ca = ssl.create_default_context(cafile=str(plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"))
    url = f"{api_url(plan, plan.cluster(GLOBAL))}/api/v1/clusters"
    headers = {"Authorization": f"Bearer {admin_token_file(plan).read_text().strip()}"}
    selector = "app.kubernetes.io/name=kubeglobe-server"

    def pods() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(kubectl(
            "-n", SYSTEM_NAMESPACE, "get", "pods", "-l", selector, "-o", "json"))["items"]
        return items

    def ready() -> int:
        return sum(1 for p in pods() if "deletionTimestamp" not in p["metadata"] and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])))

    _until(lambda: ready() == 2, 120)
    stop = threading.Event()
    answered, failed = [0] * clients, [0] * clients

    def client(i: int) -> None:
        with httpx.Client(verify=ca, trust_env=False, timeout=15) as http:
            while not stop.is_set():
                try:
                    ok = http.get(url, headers=headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                answered[i] += ok
                failed[i] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        victim = sorted(p["metadata"]["name"] for p in pods())[0]
        kubectl("-n", SYSTEM_NAMESPACE, "delete", "pod", victim, "--wait=false")
        took = _until(lambda: victim not in {p["metadata"]["name"] for p in pods()}
                      and ready() == 2, 120)
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return sum(answered), sum(failed), took


def _etcd_keys(plan: EnvironmentPlan, member: int, prefix: str) -> int:
    g = plan.cluster(GLOBAL)
    pki = ClusterPki(dir=plan.cluster_dir(GLOBAL) / "pki")
    client = pki.pair("etcd-client")
    done = subprocess.run(
        ["etcdctl", f"--endpoints={g.etcd[member].client_url}", f"--cacert={pki.etcd_ca.cert}",
         f"--cert={client.cert}", f"--key={client.key}", "--command-timeout=5s", "get",
         "--consistency=s", "--keys-only", "--prefix", prefix],
        capture_output=True, text=True, timeout=30,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def partition(plan: EnvironmentPlan, kubectl: Kubectl, round_: int,
              seconds: float) -> tuple[int, int, int, float]:
    """(writes acknowledged, writes failed, acknowledged writes lost, catch-up seconds)."""
    node = [n for n in plan.cluster(GLOBAL).nodes if n.control_plane][-1]
    prefix = f"failover-{round_}-{int(time.time())}"
    acknowledged, failed = [], 0
    set_node_link(node, up=False)
    try:
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < seconds:
            name = f"{prefix}-{i}"
            try:
                kubectl("create", "configmap", name, f"--from-literal=i={i}",
                        "--request-timeout=5s")
                acknowledged.append(name)
            except (RuntimeError, subprocess.TimeoutExpired):
                failed += 1
            i += 1
            time.sleep(0.2)
    finally:
        set_node_link(node, up=True)
    healed = time.monotonic()
    present = set(kubectl("get", "configmaps", "-o", "name").split())
    lost = sum(1 for name in acknowledged if f"configmap/{name}" not in present)
    key_prefix = f"/registry/configmaps/default/{prefix}-"
    _until(lambda: _etcd_keys(plan, len(plan.cluster(GLOBAL).etcd) - 1, key_prefix)
           >= len(acknowledged), 120)
    caught_up = time.monotonic() - healed
    kubectl("delete", "configmaps", *acknowledged, "--wait=false", check=False)
    return len(acknowledged), failed, lost, caught_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cut-seconds", type=float, default=20.0)
    args = parser.parse_args()
    console = Console()
    kubectl_bin = build_binaries(progress=lambda _: None, check=smoke_test).path("kubectl")
    controller: list[tuple[float, float]] = []
    servers: list[tuple[int, int, float]] = []
    cuts: list[tuple[int, int, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="kubeglobe-bench-") as tmp:
        state_dir = Path(tmp) / "env"
        try:
            with console.status("up") as line:
                plan = environment.up(state_dir=state_dir,
                                      report=lambda m: line.update(f"up: {m[:100]}"))
            kubectl = _kubectl(plan, kubectl_bin)
            for r in range(args.rounds):
                with console.status(f"round {r + 1}: controller leader killed"):
                    controller.append(controller_failover(plan, kubectl))
                with console.status(f"round {r + 1}: API server pod deleted under load"):
                    servers.append(server_pod_loss(plan, kubectl))
                with console.status(f"round {r + 1}: control-plane node cut off"):
                    cuts.append(partition(plan, kubectl, r, args.cut_seconds))
        finally:
            with console.status("down --purge"):
                environment.down(state_dir=state_dir, purge=True)
    table = Table(title="controller leader killed")
    for column in ("round", "new leader (s)", "first heartbeat (s)"):
        table.add_column(column, justify="right")
    for r, (took, acted) in enumerate(controller, 1):
        table.add_row(str(r), f"{took:.1f}", f"{acted:.1f}")
    console.print(table)
    table = Table(title="an API server pod deleted while 8 clients read the API")
    for column in ("round", "answered", "failed", "replaced after (s)"):
        table.add_column(column, justify="right")
    for r, (ok, bad, took) in enumerate(servers, 1):
        table.add_row(str(r), str(ok), str(bad), f"{took:.1f}")
    console.print(table)
    table = Table(title=f"a control-plane node host cut off for {args.cut_seconds:.0f} s")
    for column in ("round", "writes acknowledged", "failed", "lost", "member caught up (s)"):
        table.add_column(column, justify="right")
    for r, (acked, failed, lost, caught) in enumerate(cuts, 1):
        table.add_row(str(r), str(acked), str(failed), str(lost), f"{caught:.1f}")
    console.print(table)
    console.print("targets: controller failover <= 15 s; server pod loss: 0 failed requests "
                  "beyond those in flight; 0 lost acknowledged writes")


if __name__ == "__main__":
    main()
