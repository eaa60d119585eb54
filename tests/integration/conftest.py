"""One real local environment per test session, in its own state directory and slot.

The environment is started once (`environment.up`, which resumes a crashed one) and
torn down with `down --purge` at the end, so a session leaves no process or mount.
Tests marked `runs_last` (the teardown checks) run after every other test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeglobe.gateway.runtime import command, parse_map
from kubeglobe.local import environment
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.loadbalancer import gateway_files
from kubeglobe.local.node import NodePaths
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.process import descendants, list_processes, shims_of
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

STATE_DIR = Path(os.environ.get("KUBEGLOBE_TEST_STATE_DIR", "/tmp/kubeglobe-it"))


def _in_agent_pod(env: Env, marker: str) -> int:
    node = env.plan.cluster("workload-2").nodes[0]
    procs = list_processes()
    below = descendants({p.pid for p in shims_of(str(NodePaths(env.plan, node).socket), procs)},
                        procs)
    found = [p.pid for p in procs if p.pid in below and marker in p.cmdline]
    assert len(found) == 1, found
    return found[0]


def stats(env: Env) -> dict[tuple[str, str], list[str]]:
    """The gateway HAProxy's `show stat` rows by (proxy, server)."""
    files = gateway_files(env.plan, env.plan.cluster(GLOBAL))
    out = asyncio.run(command(files.admin_socket(), "show stat"))
    return {(r[0], r[1]): r for r in (row.split(",") for row in out.splitlines())
            if len(r) > 17 and not r[0].startswith("#")}


def served(platform: Platform) -> dict[str, int]:
    """Requests each HAProxy backend (and frontend) has served (column stot)."""
    return {b: int(r[7]) for (b, s), r in stats(platform.env).items()
            if s in ("BACKEND", "FRONTEND")}


def by_server(platform: Platform, backend: str) -> dict[str, tuple[int, str]]:
    """Requests each server of `backend` has served, and its status (UP, DOWN, ...)."""
    return {s: (int(r[7]), r[17]) for (b, s), r in stats(platform.env).items()
            if b == backend and s not in ("BACKEND", "FRONTEND")}


def route(platform: Platform, cluster: str = "workload-2") -> str:
    """The backend the gateway's cluster map names for `cluster` right now."""
    files = gateway_files(platform.env.plan, platform.env.plan.cluster(GLOBAL))
    listing = asyncio.run(command(files.admin_socket(), f"show map {files.clusters}"))
    return parse_map(listing).get(cluster, "")


def agent_pid(env: Env) -> int:
    """The PID of workload-2's agent (the container's process, found below its shim)."""
    return _in_agent_pod(env, "kubeglobe agent")


def agent_haproxy_pid(env: Env) -> int:
    """The PID of the HAProxy workload-2's agent runs (reverse HTTP to the gateway)."""
    return _in_agent_pod(env, "kubeglobe-gateway-link")


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


@dataclass
class Platform:
    env: Env
    config: Path
    workdir: Path

    def cli(self, *args: str, check: bool = True, config: Path | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI as the admin, or with another saved login (`config`)."""
        done = subprocess.run(
            [sys.executable, "-m", "kubeglobe.cli.main", *args], capture_output=True,
            text=True, timeout=120, input=stdin,
            env={**os.environ, "KUBEGLOBE_CONFIG": str(config or self.config),
                 "COLUMNS": "200"},
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubeglobe {' '.join(args)}: {done.stderr.strip()}")
        return done

    def cluster(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = json.loads(self.cli("cluster", "get", name, "-o", "json").stdout)
        return got

    def wait_phase(self, name: str, phase: str, timeout: float) -> float:
        """Seconds until cluster `name` shows `phase` (fails after `timeout`)."""
        started = time.monotonic()
        seen = None
        while time.monotonic() - started < timeout:
            seen = self.cluster(name)["status"]["phase"]
            if seen == phase:
                return time.monotonic() - started
            time.sleep(1)
        raise AssertionError(f"cluster {name} still {seen} after {timeout}s, wanted {phase}")

    def proxy_kubeconfig(self, cluster: str, token: str | None = None) -> Path:
        path = self.workdir / f"{cluster}-{'admin' if token is None else 'user'}.kubeconfig"
        self.cli("kubeconfig", "--cluster", cluster, "--output", str(path))
        if token is not None:
            doc = yaml.safe_load(path.read_text())
            doc["users"][0]["user"]["token"] = token
            path.write_text(yaml.safe_dump(doc))
        return path

    def kubectl(self, kubeconfig: Path, *args: str,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.env.kubectl_bin, f"--kubeconfig={kubeconfig}", *args],
                              capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done


@pytest.fixture(scope="session")
def platform(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("platform")
    p = Platform(env=env, config=work / "config.yaml", workdir=work)
    token = admin_token_file(env.plan).read_text().strip()
    ca = env.plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    p.cli("login", "--server", api_url(env.plan, env.plan.cluster(GLOBAL)), "--token", token,
          "--ca-file", str(ca))
    yield p
