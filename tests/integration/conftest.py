"""One real local environment per test session, in its own state directory and slot.

The environment is started once (`environment.up`, which resumes a crashed one) and
torn down at the end: `down`, then a check that it left no process, mount, network
namespace, pod log or route behind (a failure there fails the session), then `--purge`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.deploy.gateway import RUN as GATEWAY_RUN
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.runtime import command, parse_map
from kubeglobe.local import environment, network
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.mounts import mounts_below
from kubeglobe.local.node import POD_LOGS, NodePaths
from kubeglobe.local.platform import admin_token_file, api_url, gateway_replica_files
from kubeglobe.local.process import (
    ProcInfo,
    descendants,
    is_running,
    list_processes,
    shims_of,
)
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

STATE_DIR = Path(os.environ.get("KUBEGLOBE_TEST_STATE_DIR", "/tmp/kubeglobe-it"))


def in_node_containers(env: Env, cluster: str, node_name: str,
                       keep: Callable[[ProcInfo], bool]) -> list[int]:
    """PIDs of the processes `keep` takes among those in node `node_name`'s containers."""
    node = next(n for n in env.plan.cluster(cluster).nodes if n.name == node_name)
    procs = list_processes()
    below = descendants({p.pid for p in shims_of(str(NodePaths(env.plan, node).socket), procs)},
                        procs)
    return [p.pid for p in procs if p.pid in below and keep(p)]


def _in_agent_pod(env: Env, marker: str) -> int:
    node = env.plan.cluster("workload-2").nodes[0]
    found = in_node_containers(env, "workload-2", node.name, lambda p: marker in p.cmdline)
    assert len(found) == 1, found
    return found[0]


IN_POD = GatewayFiles(Path(GATEWAY_RUN))  # a gateway replica's files as its HAProxy sees them


def gateways(env: Env) -> list[GatewayFiles]:
    """Each gateway replica's files (its admin socket, its maps), one per control-plane
    node: the pods keep them in a host path the tests read."""
    return list(gateway_replica_files(env.plan).values())


def stats(files: GatewayFiles) -> dict[tuple[str, str], list[str]]:
    """One gateway replica's HAProxy `show stat` rows by (proxy, server)."""
    out = asyncio.run(command(files.admin_socket(), "show stat"))
    return {(r[0], r[1]): r for r in (row.split(",") for row in out.splitlines())
            if len(r) > 17 and not r[0].startswith("#")}


def _summed(platform: Platform, column: int,
            keep: Callable[[str, str], bool]) -> dict[tuple[str, str], int]:
    """Column `column` of the rows `keep` takes, summed over the gateway replicas."""
    total: dict[tuple[str, str], int] = {}
    for files in gateways(platform.env):
        for key, row in stats(files).items():
            if keep(*key):
                total[key] = total.get(key, 0) + int(row[column] or 0)
    return total


def served(platform: Platform) -> dict[str, int]:
    """Requests each HAProxy backend (and frontend) has served (column stot), summed
    over the gateway replicas."""
    return {b: n for (b, _), n in _summed(
        platform, 7, lambda b, s: s in ("BACKEND", "FRONTEND")).items()}


def by_server(platform: Platform, backend: str) -> dict[str, tuple[int, str]]:
    """Requests each server of `backend` has served over the gateway replicas, and its
    status there (UP, DOWN, ...; several, comma-separated, when the replicas differ)."""
    states: dict[str, set[str]] = {}
    for files in gateways(platform.env):
        for (b, s), row in stats(files).items():
            if b == backend and s not in ("BACKEND", "FRONTEND"):
                states.setdefault(s, set()).add(row[17])
    counts = _summed(platform, 7, lambda b, s: b == backend)
    return {s: (counts[(backend, s)], ",".join(sorted(found))) for s, found in states.items()}


def refused_by_server(platform: Platform, backend: str) -> dict[str, int]:
    """4xx answers each server of `backend` has passed on (column hrsp_4xx): the
    controller's liveness probes share the agents' backends but are always answered 200,
    so a test counts its own request exactly by making it one the cluster refuses."""
    return {s: n for (_, s), n in _summed(
        platform, 42, lambda b, s: b == backend and s not in ("BACKEND", "FRONTEND")).items()}


def route(platform: Platform, cluster: str = "workload-2") -> str:
    """The backend the gateway replicas' cluster maps name for `cluster` right now
    ("" for none; the names joined by "|" while the replicas differ)."""
    found = set()
    for files in gateways(platform.env):
        # HAProxy knows the map by its path in the pod
        listing = asyncio.run(command(files.admin_socket(), f"show map {IN_POD.clusters}"))
        found.add(parse_map(listing).get(cluster, ""))
    return "|".join(sorted(found))


def until(check: Callable[[], object], timeout: float, *, every: float = 0.05,
          what: str = "the condition") -> float:
    """Seconds until `check()` is true (polled every `every` s); fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout}s")


@contextlib.contextmanager
def agent_detached(platform: Platform) -> Iterator[None]:
    """workload-2's agent's HAProxy killed and the agent port paused, so that the one the agent
    restarts cannot attach until the block ends: its cluster is served by its tunnel."""
    until(lambda: route(platform) == "kg-reverse-workload-2", 60)
    replicas = gateways(platform.env)
    for files in replicas:
        asyncio.run(command(files.admin_socket(), "disable frontend kg-agents"))
    try:
        os.kill(agent_haproxy_pid(platform.env), signal.SIGKILL)
        took = until(lambda: route(platform) == "", 5)
        print(f"tunnel route {took:.1f}s after the agent's HAProxy died")
        yield
    finally:
        for files in replicas:
            asyncio.run(command(files.admin_socket(), "enable frontend kg-agents"))
    back = until(lambda: route(platform) == "kg-reverse-workload-2", 30)
    print(f"reverse route again {back:.1f}s later")


def container_pid(env: Env, cluster: str, namespace: str, pod: str,
                  container_name: str | None = None) -> int:
    """The host PID of the process of `pod`'s container `container_name` (its first by
    default), as its node's containerd has it."""
    got = json.loads(env.kubectl(cluster, "-n", namespace, "get", "pod", pod, "-o",
                                 "json").stdout)
    node = next(n for n in env.plan.cluster(cluster).nodes if n.name == got["spec"]["nodeName"])
    statuses = got["status"]["containerStatuses"]
    status = next(c for c in statuses if container_name in (None, c["name"]))
    container = status["containerID"].split("://", 1)[1]
    tasks = subprocess.run(["ctr", "--address", str(NodePaths(env.plan, node).socket),
                            "--namespace", "k8s.io", "tasks", "ls"],
                           capture_output=True, text=True, check=True, timeout=30).stdout
    for line in tasks.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container:
            return int(pid)
    raise AssertionError(f"no task {container} of pod {pod} on {node.name}: {tasks}")


def server_replicas(env: Env) -> list[str]:
    """Base URLs of the ready API server replicas (pods: the kubeglobe-server Endpoints)."""
    got = json.loads(env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "endpoints",
                                 "kubeglobe-server", "-o", "json").stdout)
    return sorted(f"https://{a['ip']}:{p['port']}" for s in got.get("subsets") or []
                  for a in s.get("addresses") or [] for p in s.get("ports") or [])


def replica_get(env: Env, url: str, timeout: float = 10) -> httpx.Response:
    """GET from one replica, its certificate verified for the platform servers' name (a
    pod's address is in no certificate)."""
    ca = ssl.create_default_context(cafile=str(env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"))
    with httpx.Client(verify=ca, trust_env=False, timeout=timeout) as http:
        return http.get(url, extensions={"sni_hostname": PLATFORM_TLS_NAME})


def agent_pid(env: Env) -> int:
    """The PID of workload-2's agent (the container's process, found below its shim)."""
    return _in_agent_pod(env, "kubeglobe agent")


def agent_haproxy_pid(env: Env) -> int:
    """The PID of the HAProxy workload-2's agent runs (reverse HTTP to the gateway)."""
    return _in_agent_pod(env, "kubeglobe-gateway-link")


@dataclass
class Env:
    plan: EnvironmentPlan
    kubectl_bin: str

    def kubeconfig(self, cluster: str) -> Path:
        return environment.admin_kubeconfig(self.plan, cluster)

    def kubectl(
        self, cluster: str, *args: str, check: bool = True, stdin: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.kubectl_bin, f"--kubeconfig={self.kubeconfig(cluster)}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def up(self) -> None:
        environment.up(state_dir=STATE_DIR, workload_clusters=2, report=_log)


def print_global_picture(env: Env) -> None:
    """global's nodes, pods and latest events: printed when a test about rescheduling
    fails, so its report says what was still in the way."""
    for args in (("get", "nodes", "-o", "wide"), ("get", "pods", "-A", "-o", "wide"),
                 ("get", "events", "-A", "--sort-by=.lastTimestamp")):
        done = env.kubectl("global", *args, check=False, timeout=30)
        print(f"$ kubectl {' '.join(args)}\n{done.stdout[-6000:]}{done.stderr[-500:]}")


def _log(message: str) -> None:
    print(f"[env] {message}", flush=True)


@pytest.fixture(scope="session")
def env() -> Iterator[Env]:
    try:
        plan = environment.up(state_dir=STATE_DIR, workload_clusters=2, report=_log)
    except BaseException:  # cleanup only: an `up` that failed half-way leaves nothing running
        environment.down(state_dir=STATE_DIR, purge=True, report=_log)
        raise
    binaries = build_binaries(progress=_log, check=smoke_test)
    yield Env(plan=plan, kubectl_bin=binaries.path("kubectl"))
    try:
        down_leaves_nothing(plan)
    finally:
        environment.down(state_dir=STATE_DIR, purge=True, report=_log)
    # --purge takes every file the environment made (its registry's storage too)
    assert not STATE_DIR.exists(), sorted(p.name for p in STATE_DIR.iterdir())


def down_leaves_nothing(plan: EnvironmentPlan) -> None:
    """`down` stops every process the environment started and undoes every mount,
    network namespace, pod log directory and route it made."""
    state = load_state(STATE_DIR)
    assert state is not None
    records = list(state.processes.values())
    uids = {p.name for n in plan.nodes()
            for p in (NodePaths(plan, n).kubelet_root / "pods").iterdir()}
    assert uids, "the session ran pods; their kubelet directories must exist"
    environment.down(state_dir=STATE_DIR, report=_log)
    # By PID and start time: a long session wraps the PID counter (32768 here), so a
    # record of a process that ended earlier may share its PID with an unrelated one.
    assert [(r.pid, r.argv[0]) for r in records if is_running(r)] == []
    marker = str(STATE_DIR.resolve())
    assert [p.cmdline for p in list_processes() if marker in p.cmdline] == []
    assert mounts_below(STATE_DIR) == []
    # the host's pod log directory (shared by every environment on the machine) may be gone
    left = POD_LOGS.iterdir() if POD_LOGS.is_dir() else iter(())
    assert [d for d in left if d.name.rsplit("_", 1)[-1] in uids] == []
    for node in plan.nodes():
        assert not network.netns_exists(node.netns)
    assert not network.bridge_in_use(plan.bridge)
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert plan.node_subnet.rsplit(".", 1)[0] not in routes


@dataclass
class Platform:
    env: Env
    config: Path
    workdir: Path

    def cli(self, *args: str, check: bool = True, config: Path | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI as the admin, or with another saved login (`config`)."""
        done = subprocess.run(
            [sys.executable, "-m", "kubeglobe.cli.main", *args], capture_output=True,
            text=True, timeout=120, input=stdin,
            env={**os.environ, "KUBEGLOBE_CONFIG": str(config or self.config),
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


@pytest.fixture(scope="session")
def platform(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("platform")
    p = Platform(env=env, config=work / "config.yaml", workdir=work)
    token = admin_token_file(env.plan).read_text().strip()
    ca = env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    p.cli("login", "--server", api_url(env.plan, env.plan.cluster(GLOBAL)), "--token", token,
          "--ca-file", str(ca))
    yield p
