"""The `kubeglobe controller` process: campaign for the Lease, run kopf while leading.

Every replica runs this; only the Lease holder runs the handlers. Losing the Lease ends
the process (exit status 1) so its supervisor starts a fresh one that campaigns again:
there is never a moment where a replica acts without holding the Lease.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import uuid
from typing import Any

import kopf
from lightkube import AsyncClient
from lightkube.config.kubeconfig import SingleConfig
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.cluster_access import ClusterAccess, PlatformRoute
from kubeglobe.hub.cluster_controller import (
    ClusterController,
    ControllerSettings,
    register_handlers,
)
from kubeglobe.hub.install import CONTROLLER_TOKEN_SECRET
from kubeglobe.hub.leader import ElectionSettings, Identity, LeaderElector
from kubeglobe.hub.tenancy.handlers import register_tenancy_handlers
from kubeglobe.hub.tenancy.propagation import TenancyPropagator
from kubeglobe.kube.client import async_client
from kubeglobe.kube.secrets import required_secret_text

LEASE_NAME = "kubeglobe-controller"
log = logging.getLogger("kubeglobe.controller")


def connection_info(config: SingleConfig) -> kopf.ConnectionInfo:
    cluster, user = config.cluster, config.user

    def data(inline: str | None, path: str | None) -> bytes | None:
        if inline:
            return base64.b64decode(inline)
        if path:
            with open(path, "rb") as f:
                return f.read()
        return None

    return kopf.ConnectionInfo(
        server=cluster.server,
        ca_data=data(cluster.certificate_auth_data, cluster.certificate_auth),
        insecure=cluster.insecure or None,
        certificate_data=data(user.client_cert_data, user.client_cert) if user else None,
        private_key_data=data(user.client_key_data, user.client_key) if user else None,
        token=user.token if user else None,
        scheme="Bearer" if user and user.token else None,
        default_namespace=SYSTEM_NAMESPACE,
    )


def _kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    prefix = "kopf.kubeglobe.io"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=prefix)
    settings.persistence.finalizer = "kubeglobe.io/cleanup"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    return settings


async def _platform_route(hub: AsyncClient, url: str | None,
                          ca_file: str | None) -> PlatformRoute | None:
    if url is None:
        return None
    secret = await hub.get(Secret, CONTROLLER_TOKEN_SECRET, namespace=SYSTEM_NAMESPACE)
    token = required_secret_text(secret.data, "token", secret=CONTROLLER_TOKEN_SECRET)
    return PlatformRoute(url=url, ca_file=ca_file, token=token)


async def run_controller(*, config: SingleConfig, heartbeat_seconds: float = 10.0,
                         lease_seconds: int = 10, platform_url: str | None = None,
                         platform_ca: str | None = None) -> int:
    """Run one replica until it loses the lease (returns 1) or is cancelled."""
    # Unique to this start (a restarted container has the same host name and PID 1), as
    # Kubernetes' own components name themselves: host name, "_", a random id.
    identity = Identity(f"{socket.gethostname()}_{uuid.uuid4()}")
    hub = async_client(config)
    route = await _platform_route(hub, platform_url, platform_ca)
    controller = ClusterController(
        hub=hub, access=ClusterAccess(hub=hub, platform=route),
        settings=ControllerSettings(heartbeat_seconds=heartbeat_seconds),
    )
    registry = kopf.OperatorRegistry()
    register_handlers(registry, controller)
    register_tenancy_handlers(registry, TenancyPropagator(hub=hub, access=controller.access))

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(config)

    elector = LeaderElector(
        client=hub,
        settings=ElectionSettings(name=LEASE_NAME, namespace=SYSTEM_NAMESPACE,
                                  lease_seconds=lease_seconds),
        identity=identity,
    )

    async def lead() -> None:
        stop = asyncio.Event()
        await kopf.operator(registry=registry, settings=_kopf_settings(), standalone=True,
                            clusterwide=True, stop_flag=stop)

    log.info("controller %s campaigning for %s/%s", identity, SYSTEM_NAMESPACE, LEASE_NAME)
    try:
        await elector.run(on_leading=lead)
    finally:  # the workload clusters' kept clients
        await controller.access.aclose()
    return 1
