"""One real local environment per test session, in its own state directory and slot.

The environment is started once (`environment.up`, which resumes a crashed one) and
torn down with `down --purge` at the end, so a session leaves no process or mount.
Tests marked `runs_last` (the teardown checks) run after every other test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubeglobe.local import environment
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.topology import EnvironmentPlan

STATE_DIR = Path(os.environ.get("KUBEGLOBE_TEST_STATE_DIR", "/tmp/kubeglobe-it"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runs_last: run after every other integration test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)


@dataclass
class Env:
    plan: EnvironmentPlan
    kubectl_bin: str

    def kubeconfig(self, cluster: str) -> Path:
        return environment.admin_kubeconfig(self.plan, cluster)

    def kubectl(
        self, cluster: str, *args: str, check: bool = True, stdin: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.kubectl_bin, f"--kubeconfig={self.kubeconfig(cluster)}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def up(self) -> None:
        environment.up(state_dir=STATE_DIR, workload_clusters=2, report=_log)


def _log(message: str) -> None:
    print(f"[env] {message}", flush=True)


@pytest.fixture(scope="session")
def env() -> Iterator[Env]:
    plan = environment.up(state_dir=STATE_DIR, workload_clusters=2, report=_log)
    binaries = build_binaries(progress=_log)
    yield Env(plan=plan, kubectl_bin=binaries.path("kubectl"))
    environment.down(state_dir=STATE_DIR, purge=True, report=_log)
