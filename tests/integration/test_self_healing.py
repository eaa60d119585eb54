"""Kubernetes keeps the platform's pods alive: a node whose kubelet stops is NotReady
after the grace the environment sets (30 s), its pods are evicted 30 s later and run
again on other nodes, and the cluster DNS answers throughout from its other replica; a
control-plane daemon of global that exits is started again by its node's kubelet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from kubeglobe.dns.manifests import NAME, NAMESPACE
from kubeglobe.local.process import stop_process
from kubeglobe.local.state import load_state
from tests.integration.conftest import (
    STATE_DIR,
    Env,
    in_node_containers,
    print_global_picture,
    until,
)

# NotReady after 30 s, evicted after 30 s more, a new pod started and ready: 73-78 s
# alone, longer late in a busy test session; well within this. Kubernetes' defaults
# (40 s + 300 s) would not be.
RESCHEDULED_WITHIN = 240


def _dns_pods(env: Env) -> list[dict[str, object]]:
    got = json.loads(env.kubectl("global", "-n", NAMESPACE, "get", "pods", "-l",
                                 f"k8s-app={NAME}", "-o", "json").stdout)
    return [{"name": p["metadata"]["name"], "node": p["spec"].get("nodeName", ""),
             "ready": any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p.get("status", {}).get("conditions", [])),
             "deleting": "deletionTimestamp" in p["metadata"]}
            for p in got["items"]]


def _resolves(env: Env, netns: str) -> bool:
    """The cluster DNS answers through its Service address, asked from node `netns`
    (whose kube-proxy rules carry the Service)."""
    plan = env.plan.cluster("global")
    ask = subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{netns}", sys.executable, "-c",
         "import dns.message, dns.query; "
         "q = dns.message.make_query('kubernetes.default.svc.cluster.local', 'A'); "
         f"print(dns.query.udp(q, '{plan.dns_service_ip}', timeout=2).answer)"],
        capture_output=True, text=True, timeout=20)
    return ask.returncode == 0 and plan.kubernetes_service_ip in ask.stdout


def test_a_stopped_kubelets_pods_run_again_elsewhere_and_dns_keeps_answering(
        env: Env) -> None:
    until(lambda: sum(1 for p in _dns_pods(env) if p["ready"]) == 2, timeout=60, every=1,
          what="two kube-dns pods ready")
    victim = str(_dns_pods(env)[0]["node"])
    others = [n for n in env.plan.cluster("global").nodes if n.name != victim]
    asker = sorted(others, key=lambda n: n.control_plane)[0]  # asks throughout
    state = load_state(STATE_DIR)
    assert state is not None
    stop_process(state.processes[f"global/{victim}/kubelet"])
    try:
        def moved() -> bool:
            pods = [p for p in _dns_pods(env) if not p["deleting"]]
            return (len(pods) == 2 and all(p["ready"] for p in pods)
                    and victim not in {p["node"] for p in pods})

        def healed_and_answering() -> bool:
            assert _resolves(env, asker.netns), "the cluster DNS stopped answering"
            return moved()

        try:
            took = until(healed_and_answering, timeout=RESCHEDULED_WITHIN, every=2,
                         what=f"kube-dns running again off {victim}")
        except AssertionError:
            print_global_picture(env)
            raise
        print(f"kube-dns rescheduled off {victim} after {took:.0f}s")
        node = json.loads(env.kubectl("global", "get", "node", victim, "-o", "json").stdout)
        taints = {t["key"] for t in node["spec"].get("taints", [])}
        assert "node.kubernetes.io/unreachable" in taints  # why the pod had to go
    finally:
        env.up()  # the kubelet again; the evicted pod is then removed from its node
    until(lambda: all(not p["deleting"] for p in _dns_pods(env)), timeout=90, every=2,
          what=f"the evicted pod gone once {victim}'s kubelet is back")


def _in_node_containers(env: Env, node: str, program: str) -> list[int]:
    """PIDs of `program` running in a container of global's node `node`."""
    return in_node_containers(env, "global", node,
                              lambda p: bool(p.argv) and os.path.basename(p.argv[0]) == program)


def _mirror_pod(env: Env, name: str) -> tuple[int, bool, dict[str, Any]]:
    """Restarts and whether its container runs, of static pod `name`'s mirror pod (0 and
    False while the kubelet has not written it, or no container status, yet)."""
    got = env.kubectl("global", "-n", "kube-system", "get", "pod", name, "-o", "json",
                      check=False)
    pod: dict[str, Any] = json.loads(got.stdout) if got.returncode == 0 else {}
    status = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    return int(status.get("restartCount", 0)), "running" in status.get("state", {}), pod


def _kill_and_see_it_restarted(env: Env, node: str, program: str) -> float:
    name = f"{program}-{node}"  # the kubelet's mirror pod of the static pod
    until(lambda: _mirror_pod(env, name)[1], timeout=60, every=1, what=f"{name} running")
    restarts, _, pod = _mirror_pod(env, name)
    assert "kubernetes.io/config.mirror" in pod["metadata"]["annotations"]
    assert pod["spec"]["nodeName"] == node
    [pid] = _in_node_containers(env, node, program)
    os.kill(pid, signal.SIGKILL)  # as when it loses its Lease and exits

    def again() -> bool:
        now, running, _ = _mirror_pod(env, name)
        return (now > restarts and running
                and _in_node_containers(env, node, program) not in ([], [pid]))

    return until(again, timeout=60, every=1, what=f"{program} on {node} started again")


def test_a_control_plane_daemon_that_exits_is_started_again_by_its_kubelet(env: Env) -> None:
    node = next(n for n in env.plan.cluster("global").nodes if n.control_plane)
    for program in ("kube-controller-manager", "kube-scheduler"):
        took = _kill_and_see_it_restarted(env, node.name, program)
        print(f"{program} on {node.name} started again {took:.1f}s after SIGKILL")
