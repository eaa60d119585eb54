"""`up` is idempotent and recovers a crash; conflicts are refused. (That `down` leaves
nothing is checked when the session's environment goes: `conftest.env`.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubeglobe.local import environment, network
from kubeglobe.local.images import DEMO_IMAGE
from kubeglobe.local.process import kill_process, stop_process
from kubeglobe.local.state import EnvironmentConflict, load_state
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import STATE_DIR, Env, until


def _pids() -> dict[str, int]:
    state = load_state(STATE_DIR)
    assert state is not None
    return {k: r.pid for k, r in state.processes.items()}


def test_up_after_up_starts_nothing(env: Env) -> None:
    before = _pids()
    env.up()
    assert _pids() == before
    _, rows = environment.status(state_dir=STATE_DIR)
    assert all(r.health == "ok" for r in rows), [(r.key, r.health) for r in rows]
    assert {r.key for r in rows} == set(before)


def _status() -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "kubeglobe.cli.main", "local", "status",
                           "-o", "json", "--state-dir", str(STATE_DIR)],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout)


def test_status_shows_every_node_and_the_platform_pods_with_their_health(env: Env) -> None:
    """The platform runs as pods: `local status` shows them beside the processes."""
    def all_healthy() -> bool:
        code, shown = _status()
        return code == 0 and shown["healthy"]

    until(all_healthy, 90, every=2, what="`local status` to be healthy")
    _, shown = _status()
    objects = {(o["cluster"], o["kind"], o["name"]): o for o in shown["objects"]}
    nodes = {(c.name, n.name) for c in env.plan.clusters for n in c.nodes}
    assert {(c, n) for c, kind, n in objects if kind == "Node"} == nodes
    pods = [(c, name) for c, kind, name in objects if kind == "Pod"]
    by_app = {app: sum(1 for c, name in pods if c == GLOBAL and
                       name.startswith(f"kubeglobe-system/{app}-"))
              for app in ("kubeglobe-controller", "kubeglobe-server", "kubeglobe-registry",
                          "kubeglobe-gateway")}
    assert by_app == {"kubeglobe-controller": 2, "kubeglobe-server": 2, "kubeglobe-registry": 3,
                      "kubeglobe-gateway": 3}
    for cluster in env.plan.clusters:  # two where there are nodes to spread them over
        assert sum(1 for c, name in pods if c == cluster.name
                   and name.startswith("kube-system/kube-dns-")) == min(2, len(cluster.nodes))
    planes = {n.name for n in env.plan.cluster(GLOBAL).nodes if n.control_plane}
    for app in ("kubeglobe-registry", "kubeglobe-gateway"):  # one on each control-plane node
        assert {o["node"] for o in objects.values()
                if o["name"].startswith(f"kubeglobe-system/{app}-")} == planes
    # A cluster that does not answer is one row saying so, and status exits 1.
    state = load_state(STATE_DIR)
    assert state is not None
    stop_process(state.processes["workload-1/apiserver-0"])
    try:
        code, shown = _status()
        assert code == 1 and not shown["healthy"]
        lost = [o for o in shown["objects"] if o["cluster"] == "workload-1"]
        assert [(o["kind"], o["health"][:12]) for o in lost] == [("Cluster", "unreachable:")]
    finally:
        env.up()


SURVIVOR = f"""
apiVersion: v1
kind: Pod
metadata: {{name: survivor, namespace: default}}
spec:
  containers:
  - name: main
    image: {DEMO_IMAGE}
    imagePullPolicy: IfNotPresent
"""


def _container_id(env: Env) -> str:
    return env.kubectl("workload-2", "get", "pod", "survivor", "-o",
                       "jsonpath={.status.containerStatuses[0].containerID}").stdout


def test_up_recovers_a_crashed_node_and_its_containers_survive(env: Env) -> None:
    env.kubectl("workload-2", "apply", "-f", "-", stdin=SURVIVOR)
    env.kubectl("workload-2", "wait", "pod/survivor", "--for=condition=Ready", "--timeout=120s")
    container = _container_id(env)
    state = load_state(STATE_DIR)
    assert state is not None
    for part in ("kubelet", "containerd"):
        kill_process(state.processes[f"workload-2/workload-2-node-1/{part}"])
    env.up()
    after = load_state(STATE_DIR)
    assert after is not None
    for part in ("kubelet", "containerd"):
        key = f"workload-2/workload-2-node-1/{part}"
        assert after.processes[key].pid != state.processes[key].pid
    node = env.kubectl("workload-2", "get", "node", "workload-2-node-1", "-o",
                       "jsonpath={.status.conditions[?(@.type=='Ready')].status}").stdout
    assert node == "True"
    # The restarted containerd took over the running container: same ID, no restart.
    assert _container_id(env) == container
    restarts = env.kubectl("workload-2", "get", "pod", "survivor", "-o",
                           "jsonpath={.status.containerStatuses[0].restartCount}").stdout
    assert restarts == "0"


def test_slot_taken_by_another_environment_is_refused(env: Env, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentConflict, match=f"slot {env.plan.slot} .* belongs to"):
        environment.up(state_dir=tmp_path / "other", slot=env.plan.slot, workload_clusters=0)
    assert load_state(tmp_path / "other") is None


def test_busy_port_is_refused_before_anything_starts(env: Env, tmp_path: Path) -> None:
    free_slot = max(s for s in range(50) if not network.bridge_in_use(f"kgbr{s}"))
    plan = environment.resolve_plan(state_dir=tmp_path / "x", workload_clusters=0,
                                    slot=free_slot)[0]
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", plan.ports()[0]))
    blocker.listen()
    try:
        with pytest.raises(EnvironmentConflict, match=f"ports {plan.ports()[0]} are in use"):
            environment.up(state_dir=tmp_path / "x", slot=free_slot, workload_clusters=0)
    finally:
        blocker.close()
    assert not network.bridge_in_use(plan.bridge)
    assert load_state(tmp_path / "x") is None
