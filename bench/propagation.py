"""Time for a project change to be in place on every cluster.

Run: .venv/bin/python bench/propagation.py [--state-dir DIR] [--namespaces N] [--rounds R]

Each round creates a project spanning workload-1 and workload-2 with N namespaces spread
over both and a developer binding, then measures, per namespace, the seconds until its
Namespace, ResourceQuota and RoleBinding exist on its cluster; prints p50/p99 and the
time until everything is in place, then deletes the round's objects. Target: p99 under
2 s for 2 clusters. Traffic stays on this machine; waits are bounded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from rich.console import Console

from benchenv import bench_environment
from kubeglobe.local import environment
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

CLUSTERS = ("workload-1", "workload-2")
TIMEOUT = 120.0


def kubectl(kubectl_bin: str, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([kubectl_bin, f"--kubeconfig={kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    return done.stdout if done.returncode == 0 else ""


def one_round(plan: EnvironmentPlan, kubectl_bin: str, n: int,
              round_no: int) -> tuple[list[float], float]:
    project = f"bench{round_no}"
    docs: list[dict[str, object]] = [
        {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "Project", "metadata": {"name": project},
         "spec": {"clusters": [{"name": c} for c in CLUSTERS]}},
        {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "PlatformRoleBinding",
         "metadata": {"name": f"{project}-dev"},
         "spec": {"role": "developer", "subject": {"kind": "User", "name": "dev"},
                  "scope": {"project": project}}},
    ]
    wanted = []
    for i in range(n):
        cluster = CLUSTERS[i % len(CLUSTERS)]
        namespace = f"{project}-ns{i}"
        wanted.append((cluster, namespace))
        docs.append({"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
                     "metadata": {"name": f"{namespace}-{cluster}"},
                     "spec": {"project": project, "cluster": cluster, "namespace": namespace,
                              "quota": {"pods": 5}}})
    hub = environment.admin_kubeconfig(plan, GLOBAL)
    started = time.monotonic()
    kubectl(kubectl_bin, hub, "apply", "-f", "-", stdin="\n".join(json.dumps(d) for d in docs))
    landed: dict[tuple[str, str], float] = {}
    while len(landed) < len(wanted) and time.monotonic() - started < TIMEOUT:
        for cluster in CLUSTERS:
            kc = environment.admin_kubeconfig(plan, cluster)
            quotas = kubectl(kubectl_bin, kc, "get", "resourcequota", "-A", "-l",
                             "kubeglobe.io/tenancy=true", "-o",
                             "jsonpath={range .items[*]}{.metadata.namespace} {end}").split()
            bindings = kubectl(kubectl_bin, kc, "get", "rolebinding", "-A", "-l",
                               "kubeglobe.io/tenancy=true", "-o",
                               "jsonpath={range .items[*]}{.metadata.namespace} {end}").split()
            now = time.monotonic() - started
            for c, ns in wanted:
                if c == cluster and (c, ns) not in landed and ns in quotas and ns in bindings:
                    landed[(c, ns)] = now
        time.sleep(0.1)
    total = time.monotonic() - started
    kubectl(kubectl_bin, hub, "delete", "-f", "-", stdin="\n".join(json.dumps(d) for d in docs))
    if len(landed) < len(wanted):
        raise TimeoutError(f"only {len(landed)}/{len(wanted)} namespaces in place after "
                           f"{TIMEOUT:.0f}s")
    return sorted(landed.values()), total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    kubectl_bin = build_binaries(progress=lambda _: None, check=smoke_test).path("kubectl")
    samples: list[float] = []
    with bench_environment(args.state_dir, console) as (plan, _):
        for r in range(args.rounds):
            with console.status(f"round {r + 1}/{args.rounds}"):
                times, total = one_round(plan, kubectl_bin, args.namespaces, r)
            samples += times
            console.print(f"round {r + 1}: all {len(times)} namespaces in place after "
                          f"{total:.2f}s")
            time.sleep(8)  # let the previous round's pruning finish
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    console.print(f"{len(samples)} namespaces over {len(CLUSTERS)} clusters: "
                  f"p50 {statistics.median(samples):.2f}s, p99 {p99:.2f}s "
                  "(target: p99 < 2 s)")


if __name__ == "__main__":
    main()
