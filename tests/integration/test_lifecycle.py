"""`up` is idempotent and recovers a crash; conflicts are refused. (That `down` leaves
nothing is checked when the session's environment goes: `conftest.env`.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kubeglobe.local import environment, network
from kubeglobe.local.images import DEMO_IMAGE
from kubeglobe.local.process import kill_process
from kubeglobe.local.state import EnvironmentConflict, load_state
from tests.integration.conftest import STATE_DIR, Env


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
