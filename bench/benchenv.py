"""The environment a benchmark measures: an existing one, or its own for the run.

With a state directory, the benchmark uses (and `up`s) that environment and leaves it
running; without, it starts one in a scratch directory on a free slot and removes it
afterwards, so a benchmark never leaves processes behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from kubeglobe.local import environment
from kubeglobe.local.topology import EnvironmentPlan


@contextmanager
def bench_environment(state_dir: Path | None,
                      console: Console) -> Iterator[tuple[EnvironmentPlan, Path]]:
    with tempfile.TemporaryDirectory(prefix="kubeglobe-bench-") as tmp:
        own = state_dir is None
        where = Path(tmp) / "env" if state_dir is None else state_dir.resolve()
        try:
            with console.status("environment") as line:
                plan = environment.up(state_dir=where, workload_clusters=2 if own else None,
                                      report=lambda m: line.update(f"environment: {m[:90]}"))
            yield plan, where
        finally:
            if own:
                environment.down(state_dir=where, purge=True)
