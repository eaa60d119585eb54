"""Kubernetes keeps the platform's pods alive: a node whose kubelet stops is NotReady
after the grace the environment sets (30 s), its pods are evicted 30 s later and run
again on other nodes, and the cluster DNS answers throughout from its other replica."""

from __future__ import annotations

import json
import subprocess
import sys

from kubeglobe.dns.manifests import NAME, NAMESPACE
from kubeglobe.local.process import stop_process
from kubeglobe.local.state import load_state
from tests.integration.conftest import STATE_DIR, Env, until

# NotReady after 30 s, evicted after 30 s more, a new pod started and ready: well
# within this. Kubernetes' defaults (40 s + 300 s) would not be.
RESCHEDULED_WITHIN = 150


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

        took = until(healed_and_answering, timeout=RESCHEDULED_WITHIN, every=2,
                     what=f"kube-dns running again off {victim}")
        print(f"kube-dns rescheduled off {victim} after {took:.0f}s")
        node = json.loads(env.kubectl("global", "get", "node", victim, "-o", "json").stdout)
        taints = {t["key"] for t in node["spec"].get("taints", [])}
        assert "node.kubernetes.io/unreachable" in taints  # why the pod had to go
    finally:
        env.up()  # the kubelet again; the evicted pod is then removed from its node
    until(lambda: all(not p["deleting"] for p in _dns_pods(env)), timeout=90, every=2,
          what=f"the evicted pod gone once {victim}'s kubelet is back")
