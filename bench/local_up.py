"""How long the local environment takes: cold `up`, `up` when running (a no-op), `down`.

Run: .venv/bin/python bench/local_up.py [--workload-clusters N]
Starts its own environment in a scratch state directory (own slot), prints the figures,
and tears everything down. Needs the Kubernetes binaries (`make k8s`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from kubeglobe.local import environment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload-clusters", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kubeglobe-bench-") as tmp:
        state_dir = Path(tmp) / "env"
        figures: dict[str, float] = {}
        try:
            with console.status("cold up") as line:
                t0 = time.monotonic()
                environment.up(state_dir=state_dir, workload_clusters=args.workload_clusters,
                               report=lambda m: line.update(f"cold up: {m[:100]}"))
                figures["cold up (s)"] = time.monotonic() - t0
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
    console.print(f"local environment, {args.workload_clusters} workload clusters:")
    for name, value in figures.items():
        console.print(f"  {name:<22} {value:8.2f}")


if __name__ == "__main__":
    main()
