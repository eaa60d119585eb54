"""The platform's own processes in the local environment: controller and API server.

Two replicas of each run as daemons on the host, beside the global cluster they work
on: controllers elect a leader through a Lease, API servers sit behind the global
HAProxy's `platform-api` frontend. (They move into the global cluster as containers
once the platform image exists; until then this module is where they are started.)
`prepare_platform` installs the CRDs and RBAC and keeps the bootstrap admin token.
"""

from __future__ import annotations

import asyncio
import os
import sys
from functools import partial
from pathlib import Path

from kubeglobe.hub.install import install
from kubeglobe.hub.onboarding import OnboardingError, import_cluster
from kubeglobe.kube.client import async_client, load_kubeconfig, sync_client
from kubeglobe.local.component import Component
from kubeglobe.local.health import probe_http
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan

CONTROLLER_REPLICAS = 2


def platform_dir(env: EnvironmentPlan) -> Path:
    return env.state_dir / "platform"


def admin_token_file(env: EnvironmentPlan) -> Path:
    return platform_dir(env) / "admin.token"


def api_url(env: EnvironmentPlan, cluster: ClusterPlan) -> str:
    return f"https://{env.host_ip}:{cluster.platform_endpoint_port}"


def _kubeglobe(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubeglobe.cli.main", *args]


def platform_components(
    *, env: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki, kubeconfig: Path,
    heartbeat_seconds: float = 10.0,
) -> list[Component]:
    if not cluster.platform_server_ports:
        return []
    logs = platform_dir(env) / "logs"
    found = []
    for i in range(CONTROLLER_REPLICAS):
        found.append(Component(
            key=f"{cluster.name}/kubeglobe-controller-{i}", cluster=cluster.name,
            kind="kubeglobe-controller",
            argv=_kubeglobe("controller", "--kubeconfig", str(kubeconfig),
                            "--heartbeat-seconds", str(heartbeat_seconds)),
            log=logs / f"controller-{i}.log",
            probe=lambda: "ok",  # running is healthy: a follower does nothing by design
        ))
    serving = pki.pair("platform-server")
    for i, port in enumerate(cluster.platform_server_ports):
        found.append(Component(
            key=f"{cluster.name}/kubeglobe-server-{i}", cluster=cluster.name,
            kind="kubeglobe-server",
            argv=_kubeglobe("server", "--kubeconfig", str(kubeconfig), "--host", env.host_ip,
                            "--port", str(port), "--tls-cert", str(serving.cert),
                            "--tls-key", str(serving.key)),
            log=logs / f"server-{i}.log",
            probe=partial(probe_http, f"https://{env.host_ip}:{port}/readyz", ca=pki.ca.cert),
            port=port,
        ))
    return found


def prepare_platform(*, env: EnvironmentPlan, kubeconfig: Path) -> str | None:
    """Install (idempotent) and keep the admin token; returns it when first created."""
    token = install(sync_client(load_kubeconfig(path=kubeconfig)))
    if token is not None:
        path = admin_token_file(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    return token


def ensure_imported(*, env: EnvironmentPlan, hub_kubeconfig: Path, name: str,
                    kubeconfig: Path) -> bool:
    """Import cluster `name` unless the hub knows it already; True if imported now."""

    async def run() -> bool:
        hub = async_client(load_kubeconfig(path=hub_kubeconfig))
        try:
            await import_cluster(hub=hub, name=name, kubeconfig=kubeconfig.read_bytes())
        except OnboardingError as e:
            if e.status == 409:
                return False
            raise
        finally:
            await hub.close()
        return True

    return asyncio.run(run())
