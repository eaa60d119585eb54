"""The platform in the local environment: its pods in global, nothing on the host.

The gateway (HAProxy and its sync on each control-plane node, `deploy/gateway.py`), the
controller (two replicas electing a leader through a Lease) and the API servers (two
replicas behind the gateway) run as pods in global, applied by
`apply_platform_workloads` with the Secrets they mount made from this environment's PKI.
The environment's load balancer on the host passes the platform's ports through to the
gateway replicas. `prepare_platform` installs the CRDs and RBAC and keeps the bootstrap
admin token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from lightkube import AsyncClient, codecs

from kubeglobe.agent.manifests import agent_manifests
from kubeglobe.api.meta import FIELD_MANAGER, GATEWAY_SERVICE, SYSTEM_NAMESPACE
from kubeglobe.deploy.apply import apply_set
from kubeglobe.deploy.manifests import (
    CONTROLLER,
    PLATFORM_SET,
    SERVER,
)
from kubeglobe.deploy.platform import platform_workloads
from kubeglobe.deploy.values import PlatformValues
from kubeglobe.files import write_atomic
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.hub.install import WEBHOOK_PATH, WebhookEndpoint, install
from kubeglobe.hub.onboarding import OnboardingError, import_cluster
from kubeglobe.hub.registration import create_registered_cluster
from kubeglobe.kube.client import async_client, load_kubeconfig, sync_client
from kubeglobe.local.apply import wait_rolled_out
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import GLOBAL, ClusterPlan, EnvironmentPlan

T = TypeVar("T")



def platform_dir(env: EnvironmentPlan) -> Path:
    return env.state_dir / "platform"


def admin_token_file(env: EnvironmentPlan) -> Path:
    return platform_dir(env) / "admin.token"


def api_url(env: EnvironmentPlan, cluster: ClusterPlan) -> str:
    return f"https://{env.host_ip}:{cluster.platform_endpoint_port}"


def agent_gateway(env: EnvironmentPlan, cluster: ClusterPlan) -> str:
    """Where agents attach to the gateway (HOST:PORT of its agent port)."""
    return f"{env.host_ip}:{cluster.agent_endpoint_port}"


def servers_gateway(env: EnvironmentPlan, cluster: ClusterPlan) -> str:
    """Where the API servers reach attached agents through the gateway (HOST:PORT)."""
    return f"{env.host_ip}:{cluster.servers_agents_port}"


def gateway_runtime_dir(env: EnvironmentPlan) -> Path:
    """Below it, each gateway replica's HAProxy files and sockets, by node name (every
    node host sees the host's files: one directory serves the three)."""
    return env.state_dir / "gateway"


def gateway_replica_files(env: EnvironmentPlan) -> dict[str, GatewayFiles]:
    """Each gateway replica's files, by its control-plane node's name."""
    return {n.name: GatewayFiles(gateway_runtime_dir(env) / n.name)
            for n in env.cluster(GLOBAL).nodes if n.control_plane}


def apply_platform_workloads(*, env: EnvironmentPlan, kubeconfig: Path, image: str) -> None:
    """The platform's pods in global, and the Secrets they mount from this PKI."""
    g = env.cluster(GLOBAL)
    pki = ClusterPki(dir=env.cluster_dir(GLOBAL) / "pki")
    assert (g.platform_endpoint_port and g.agent_endpoint_port
            and g.servers_agents_port), "global has the platform's ports"
    values = PlatformValues(image=image, platform_url=api_url(env, g),
                            platform_ca_pem=pki.ca.cert.read_text(),
                            agent_gateway=agent_gateway(env, g),
                            servers_gateway=servers_gateway(env, g),
                            platform_port=g.platform_endpoint_port,
                            agent_port=g.agent_endpoint_port,
                            servers_port=g.servers_agents_port,
                            gateway_runtime_dir=str(gateway_runtime_dir(env)))
    with sync_client(load_kubeconfig(path=kubeconfig)) as hub:
        apply_set(hub, name=PLATFORM_SET, namespace=SYSTEM_NAMESPACE,
                  manifests=platform_workloads(values, pki))


def wait_platform_workloads(*, kubeconfig: Path) -> None:
    wait_rolled_out(kubeconfig, name=GATEWAY_SERVICE, namespace=SYSTEM_NAMESPACE,
                    what=f"{GLOBAL}: {SYSTEM_NAMESPACE}/{GATEWAY_SERVICE}", daemonset=True)
    for name in (SERVER, CONTROLLER):
        wait_rolled_out(kubeconfig, name=name, namespace=SYSTEM_NAMESPACE,
                        what=f"{GLOBAL}: {SYSTEM_NAMESPACE}/{name}")


def prepare_platform(*, env: EnvironmentPlan, cluster: ClusterPlan, kubeconfig: Path,
                     ca_cert: Path) -> str | None:
    """Install (idempotent) and keep the admin token; returns it when first created."""
    webhook = WebhookEndpoint(url=api_url(env, cluster) + WEBHOOK_PATH,
                              ca_pem=ca_cert.read_text())
    token = install(sync_client(load_kubeconfig(path=kubeconfig)), webhook)
    if token is not None:
        write_atomic(admin_token_file(env), (token + "\n").encode())
    return token


def ensure_imported(*, env: EnvironmentPlan, hub_kubeconfig: Path, name: str,
                    kubeconfig: Path) -> bool:
    """Import cluster `name` unless the hub knows it already; True if imported now."""
    created = _create_unless_exists(hub_kubeconfig, lambda hub: import_cluster(
        hub=hub, name=name, kubeconfig=kubeconfig.read_bytes()))
    return created is not None


def _create_unless_exists(hub_kubeconfig: Path,
                          create: Callable[[AsyncClient], Awaitable[T]]) -> T | None:
    """Run an onboarding call against the hub; None if the cluster exists already."""

    async def run() -> T | None:
        hub = async_client(load_kubeconfig(path=hub_kubeconfig))
        try:
            return await create(hub)
        except OnboardingError as e:
            if e.status == 409:
                return None
            raise
        finally:
            await hub.close()

    return asyncio.run(run())


def ensure_registered(*, env: EnvironmentPlan, hub_kubeconfig: Path, name: str,
                      kubeconfig: Path, agent_image: str) -> bool:
    """Register `name` and deploy its agent; on later runs only refresh the agent.

    Returns True if the cluster was registered now. The agent's Secret (holding its
    credential) is applied only with a fresh bootstrap token, never over a credential.
    """
    g = env.cluster(GLOBAL)
    ca_pem = (env.cluster_dir(GLOBAL) / "pki" / "ca.crt").read_text()

    created = _create_unless_exists(
        hub_kubeconfig, lambda hub: create_registered_cluster(hub=hub, name=name))
    token = created[1] if created is not None else None
    manifests = agent_manifests(cluster=name, hub_url=api_url(env, g), hub_ca_pem=ca_pem,
                                bootstrap_token=token or "", image=agent_image)
    if token is None:
        manifests = [m for m in manifests if m["kind"] != "Secret"]
    workload = sync_client(load_kubeconfig(path=kubeconfig))
    for manifest in manifests:
        workload.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
    return token is not None
