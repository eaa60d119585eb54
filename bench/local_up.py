"""How long the local environment takes, and how much memory it holds.

Run: .venv/bin/python bench/local_up.py [--workload-clusters N] [--global-workers W]
     [--nodes M]
Starts its own environment in a scratch state directory (own slot) and prints: cold
`up` (binaries and images cached: to every node Ready, cluster DNS available, the
platform up and both workload clusters Ready on the hub), `up` when running (a no-op),
`status`, `down --purge`; and the resident memory of what the environment runs, per
kind of process (etcd, apiservers, kubelets, ..., the containers below each node's
containerd) and in total, read from /proc after `up`. Tears everything down. Targets
(issue 15): all Ready in <= 120 s, <= 4 GiB resident in total.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kubeglobe.local import environment
from kubeglobe.local.binaries import K8sBinaries
from kubeglobe.local.node import NodePaths
from kubeglobe.local.process import descendants, list_processes, shims_of
from kubeglobe.local.state import load_state


def _rss_mib(pid: int) -> float:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # gone meanwhile
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:")),
                0.0)


def memory_by_kind(state_dir: Path) -> dict[str, float]:
    """MiB resident per kind of process the environment started, and its containers."""
    state = load_state(state_dir)
    assert state is not None
    plan = environment.existing_plan(state_dir)
    kinds = {c.key: c.kind for c in environment.components(
        plan=plan, binaries=K8sBinaries(dir=Path("/nonexistent")))}
    found: dict[str, float] = defaultdict(float)
    for key, record in state.processes.items():
        found[kinds.get(key, key)] += _rss_mib(record.pid)
    procs = list_processes()
    by_pid = {p.pid: p for p in procs}
    for node in plan.nodes():
        shims = {p.pid for p in shims_of(str(NodePaths(plan, node).socket), procs)}
        for pid in descendants(shims, procs):
            found[f"containers: {_program(by_pid[pid].argv) if pid in by_pid else '?'}"] += (
                _rss_mib(pid))
    return dict(found)


def _program(argv: tuple[str, ...]) -> str:
    """What a container's process is, for the table: its program, or the platform's
    command (`kubeglobe gateway`) for a Python one."""
    if not argv:
        return "?"
    name = Path(argv[0]).name
    if name.startswith("python") or name == "kubeglobe":
        words = [a for a in argv[1:] if not a.startswith("-") and "/" not in a]
        return " ".join(["kubeglobe", *words[:1]]) if words else name
    return "shims" if name.startswith("containerd-shim") else name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload-clusters", type=int, default=2)
    parser.add_argument("--global-workers", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kubeglobe-bench-") as tmp:
        state_dir = Path(tmp) / "env"
        figures: dict[str, float] = {}
        memory: dict[str, float] = {}
        try:
            with console.status("cold up") as line:
                t0 = time.monotonic()
                plan = environment.up(
                    state_dir=state_dir, workload_clusters=args.workload_clusters,
                    global_workers=args.global_workers, workload_nodes=args.nodes,
                    report=lambda m: line.update(f"cold up: {m[:100]}"))
                figures["cold up (s)"] = time.monotonic() - t0
            memory = memory_by_kind(state_dir)
            t0 = time.monotonic()
            environment.up(state_dir=state_dir)
            figures["up when running (s)"] = time.monotonic() - t0
            t0 = time.monotonic()
            environment.status(state_dir=state_dir)
            figures["status (s)"] = time.monotonic() - t0
        finally:
            t0 = time.monotonic()
            environment.down(state_dir=state_dir, purge=True)
            figures["down --purge (s)"] = time.monotonic() - t0
    console.print(f"local environment: {len(plan.nodes())} node hosts "
                  f"({args.global_workers} global workers), {args.workload_clusters} "
                  "workload clusters:")
    for name, value in figures.items():
        console.print(f"  {name:<22} {value:8.2f}")
    table = Table(title="resident memory after up")
    table.add_column("kind")
    table.add_column("MiB", justify="right")
    for kind, mib in sorted(memory.items(), key=lambda kv: -kv[1]):
        table.add_row(kind, f"{mib:.0f}")
    table.add_row("total", f"{sum(memory.values()):.0f}")
    console.print(table)
    console.print("targets: cold up <= 120 s, total <= 4096 MiB")


if __name__ == "__main__":
    main()
