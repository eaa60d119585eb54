"""How fast the hub notices a lost cluster, and that it raises no false alarm under load.

Run: .venv/bin/python bench/detection.py [--state-dir DIR] [--rounds N] [--load C]

Each round stops one workload cluster's apiserver (workload-1, imported, and
workload-2, registered, in turn) while C clients keep the hub busy with proxied
requests to the *other* cluster, and measures the seconds until the stopped cluster's
phase is Unavailable and, after a restart, Ready again. It also samples the healthy
cluster's phase throughout: any phase but Ready there is a false alarm. Target: loss
detected within 15 s, no false alarms. Traffic stays on this machine;
every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from benchenv import bench_environment
from kubeglobe.local import environment
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.process import stop_process
from kubeglobe.local.state import load_state
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

PAIRS = (("workload-1", "workload-2"), ("workload-2", "workload-1"))
PHASE_TIMEOUT = 120.0


def _api(plan: EnvironmentPlan) -> httpx.AsyncClient:
    ca = plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    token = admin_token_file(plan).read_text().strip()
    return httpx.AsyncClient(base_url=api_url(plan, plan.cluster(GLOBAL)),
                             verify=ssl.create_default_context(cafile=str(ca)),
                             headers={"Authorization": f"Bearer {token}"}, trust_env=False,
                             timeout=10)


async def _phase(api: httpx.AsyncClient, name: str) -> str:
    r = await api.get(f"/api/v1/clusters/{name}")
    r.raise_for_status()
    phase: str = r.json()["status"]["phase"]
    return phase


async def _wait_phase(api: httpx.AsyncClient, name: str, phase: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < PHASE_TIMEOUT:
        if await _phase(api, name) == phase:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{name} not {phase} within {PHASE_TIMEOUT:.0f}s")


async def _load(api: httpx.AsyncClient, cluster: str, stop: asyncio.Event) -> int:
    done = 0
    while not stop.is_set():
        r = await api.get(f"/clusters/{cluster}/k8s/api/v1/namespaces/kube-system/pods")
        r.raise_for_status()
        done += 1
    return done


async def _watch_healthy(api: httpx.AsyncClient, cluster: str, stop: asyncio.Event) -> list[str]:
    alarms = []
    while not stop.is_set():
        phase = await _phase(api, cluster)
        if phase != "Ready":
            alarms.append(phase)
        await asyncio.sleep(1)
    return alarms


async def one_round(plan: EnvironmentPlan, state_dir: Path, lost: str, healthy: str,
                    load: int) -> tuple[float, float, int, list[str]]:
    async with _api(plan) as api:
        await _wait_phase(api, lost, "Ready")
        stop = asyncio.Event()
        loaders = [asyncio.create_task(_load(api, healthy, stop)) for _ in range(load)]
        watcher = asyncio.create_task(_watch_healthy(api, healthy, stop))
        state = load_state(state_dir)
        assert state is not None
        stopping = time.monotonic()  # stopping waits for the apiserver to exit: count it
        stop_process(state.processes[f"{lost}/apiserver-0"])
        try:
            await _wait_phase(api, lost, "Unavailable")
            detected = time.monotonic() - stopping
        finally:
            restarted = time.monotonic()
            # `up` restarts the apiserver and returns once the hub sees the cluster Ready.
            await asyncio.to_thread(environment.up, state_dir=state_dir)
        await _wait_phase(api, lost, "Ready")
        recovered = time.monotonic() - restarted
        stop.set()
        requests = sum(await asyncio.gather(*loaders))
        return detected, recovered, requests, await watcher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--load", type=int, default=8)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"lost-cluster detection, {args.load} concurrent proxy clients")
    for col in ("lost", "loaded", "detected (s)", "Ready after restart (s)", "requests served",
                "false alarms"):
        table.add_column(col)
    with bench_environment(args.state_dir, console) as (plan, state_dir):
        for _ in range(args.rounds):
            for lost, healthy in PAIRS:
                with console.status(f"stopping {lost}'s apiserver"):
                    detected, recovered, served, alarms = asyncio.run(
                        one_round(plan, state_dir, lost, healthy, args.load))
                table.add_row(lost, healthy, f"{detected:.1f}", f"{recovered:.1f}",
                              str(served), str(len(alarms)))
    console.print(table)
    console.print("target: detected <= 15 s, 0 false alarms")


if __name__ == "__main__":
    main()
