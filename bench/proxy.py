"""Cluster proxy overhead: get and list through the hub vs straight to the apiserver.

Run: .venv/bin/python bench/proxy.py [--state-dir DIR] [--requests N] [--concurrency C]

For workload-1 (imported: the hub dials it) and workload-2 (registered: through its
agent's connections) it measures, in one run, p50/p99 latency of sequential requests
(the ways taking turns) and requests/s with C concurrent clients (three runs each way,
in turns), for a `get` (one namespace) and a `list` (the pods of kube-system), three
ways:

- through the proxy, as the platform admin (`/api/v1/whoami` names its user and
  groups, which the proxy impersonates);
- directly to the apiserver as that same user: the admin kubeconfig impersonating the
  same user and groups, so the cluster's RBAC evaluates the very call the proxy sends.
  The targets are measured against this way: what the hub adds to a user's call;
- directly as the cluster's own admin (system:masters, which skips RBAC), printed for
  reference: the ratio against it also counts the cluster's RBAC for the caller.

Targets: p50 at most 1.3x direct, throughput at least 70% of direct.
Without --state-dir it starts (and afterwards removes) an environment of its own.
Traffic goes only to this machine's own environment; loops are bounded by --requests.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchenv import bench_environment
from kubeglobe.kube.client import load_kubeconfig
from kubeglobe.kube.rest import rest_target
from kubeglobe.local import environment
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

CALLS = {"get": "/api/v1/namespaces/default", "list": "/api/v1/namespaces/kube-system/pods"}
ROUNDS = 3  # throughput runs per way, taken in turns


@dataclass
class Figures:
    p50_ms: float
    p99_ms: float
    rps: float


AS_USER, AS_ADMIN, PROXY = "direct as the user", "direct as cluster admin", "proxy"


def _platform(plan: EnvironmentPlan) -> dict[str, Any]:
    """How to reach the platform API as its admin (httpx client arguments)."""
    ca = plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    token = admin_token_file(plan).read_text().strip()
    return {"base_url": api_url(plan, plan.cluster(GLOBAL)), "trust_env": False,
            "verify": ssl.create_default_context(cafile=str(ca)),
            "headers": {"Authorization": f"Bearer {token}"}}


def _impersonating(plan: EnvironmentPlan) -> list[tuple[str, str]]:
    """The headers the proxy sends for the platform admin: its user and groups."""
    with httpx.Client(**_platform(plan)) as platform:
        me = platform.get("/api/v1/whoami").raise_for_status().json()
    return [("Impersonate-User", me["user"]), *(("Impersonate-Group", g) for g in me["groups"])]


def _clients(plan: EnvironmentPlan, cluster: str) -> dict[str, httpx.AsyncClient]:
    direct = rest_target(load_kubeconfig(path=environment.admin_kubeconfig(plan, cluster)))
    as_user = direct.client(timeout=30)
    as_user.headers = httpx.Headers([*as_user.headers.multi_items(), *_impersonating(plan)])
    platform = _platform(plan)
    platform["base_url"] += f"/clusters/{cluster}/k8s"
    proxy = httpx.AsyncClient(**platform, timeout=30, limits=httpx.Limits(
        max_connections=64, max_keepalive_connections=64))
    return {AS_USER: as_user, AS_ADMIN: direct.client(timeout=30), PROXY: proxy}


async def _latency(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await client.get(path)
        samples.append(time.perf_counter() - t0)
        r.raise_for_status()
    return samples


async def _latencies(clients: dict[str, httpx.AsyncClient], path: str,
                     n: int) -> dict[str, list[float]]:
    """`n` sequential samples per way, taken in turns (the order swapping every round)
    so that the machine's other load falls on both ways alike."""
    samples: dict[str, list[float]] = {way: [] for way in clients}
    ways = list(clients)
    for i in range(n):
        for way in ways if i % 2 == 0 else reversed(ways):
            samples[way] += await _latency(clients[way], path, 1)
    return samples


async def _throughput(client: httpx.AsyncClient, path: str, n: int, concurrency: int) -> float:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            (await client.get(path)).raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0)


async def measure(plan: EnvironmentPlan, cluster: str, n: int,
                  concurrency: int) -> dict[tuple[str, str], Figures]:
    """Latencies of every call first, then throughputs: the sequential samples are not
    taken in the wake of a concurrent burst (every process on the path, the Python
    client too, is still settling for a few seconds after one; measured: p50 ratio
    1.18x before a burst, 1.26x right after it, 1.19x a few seconds later)."""
    clients = _clients(plan, cluster)
    latencies: dict[str, dict[str, list[float]]] = {}
    spent = {call: dict.fromkeys(clients, 0.0) for call in CALLS}
    try:
        for call, path in CALLS.items():
            for client in clients.values():
                await _latency(client, path, 10)  # warm connections and caches
            latencies[call] = await _latencies(clients, path, n)
        for call, path in CALLS.items():
            for i in range(ROUNDS):  # throughput in turns too, order swapped every round
                for way in clients if i % 2 == 0 else reversed(list(clients)):
                    spent[call][way] += n / await _throughput(clients[way], path, n,
                                                              concurrency)
    finally:
        for client in clients.values():
            await client.aclose()
    results = {}
    for call in CALLS:
        for way in clients:
            samples = sorted(latencies[call][way])
            results[(call, way)] = Figures(
                p50_ms=statistics.median(samples) * 1000,
                p99_ms=samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000,
                rps=ROUNDS * n / spent[call][way])
    return results


def report(console: Console, cluster: str, mode: str,
           results: dict[tuple[str, str], Figures]) -> None:
    table = Table(title=f"{cluster} ({mode})")
    for col in ("call", "way", "p50 ms", "p99 ms", "req/s", "p50 ratio", "throughput"):
        table.add_column(col)
    for call in CALLS:
        user, admin, proxy = (results[(call, way)] for way in (AS_USER, AS_ADMIN, PROXY))
        table.add_row(call, AS_ADMIN, f"{admin.p50_ms:.2f}", f"{admin.p99_ms:.2f}",
                      f"{admin.rps:.0f}", "", "")
        table.add_row(call, AS_USER, f"{user.p50_ms:.2f}", f"{user.p99_ms:.2f}",
                      f"{user.rps:.0f}", "", "")
        table.add_row(call, PROXY, f"{proxy.p50_ms:.2f}", f"{proxy.p99_ms:.2f}",
                      f"{proxy.rps:.0f}",
                      f"{proxy.p50_ms / user.p50_ms:.2f}x ({proxy.p50_ms / admin.p50_ms:.2f}x)",
                      f"{proxy.rps / user.rps:.0%} ({proxy.rps / admin.rps:.0%})",
                      end_section=True)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    console = Console()
    with bench_environment(args.state_dir, console) as (plan, _):
        for cluster, mode in (("workload-1", "import"), ("workload-2", "register")):
            with console.status(f"measuring {cluster}"):
                results = asyncio.run(measure(plan, cluster, args.requests, args.concurrency))
            report(console, cluster, mode, results)
    console.print("ratios: proxy against direct as the same user (in brackets: against the "
                  "cluster admin)\ntargets: p50 ratio <= 1.3x, throughput >= 70%")


if __name__ == "__main__":
    main()
