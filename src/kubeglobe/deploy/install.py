"""`kubeglobe install --image`: the whole platform onto a cluster someone already runs.

The same objects as the local environment's (`platform.py`, an ApplySet): the install's
CRDs and RBAC (`hub/install.py`), the gateway on the nodes it is given, the controller
and the API servers, with a PKI of the platform's own kept in a directory (`pki.py`),
reached at `endpoint` (a node's address, or a load balancer's in front of the gateway's
nodes). Run again, it changes only what differs and prunes what this version dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lightkube import Client

from kubeglobe.api.meta import GATEWAY_SERVICE, SYSTEM_NAMESPACE
from kubeglobe.deploy.apply import apply_set, rollout
from kubeglobe.deploy.manifests import CONTROLLER, PLATFORM_SET, SERVER
from kubeglobe.deploy.pki import PlatformPki, ensure_own_platform_pki
from kubeglobe.deploy.platform import platform_workloads
from kubeglobe.deploy.values import PlatformValues
from kubeglobe.hub.install import WEBHOOK_PATH, InstallError, WebhookEndpoint, install


@dataclass(frozen=True)
class Installed:
    url: str  # the platform API
    ca: Path  # its CA
    token: str | None  # the bootstrap admin token, when made now


def _values(*, image: str, endpoint: str, pki: PlatformPki, ports: tuple[int, int, int],
            gateway_nodes: dict[str, str]) -> PlatformValues:
    host = f"[{endpoint}]" if ":" in endpoint else endpoint
    platform, agents, servers = ports
    return PlatformValues(image=image, platform_url=f"https://{host}:{platform}",
                          platform_ca_pem=pki.ca.cert.read_text(),
                          agent_gateway=f"{host}:{agents}", servers_gateway=f"{host}:{servers}",
                          platform_port=platform, agent_port=agents, servers_port=servers,
                          gateway_node_selector=gateway_nodes)


def install_platform(client: Client, *, image: str, endpoint: str, pki_dir: Path,
                     ports: tuple[int, int, int], gateway_nodes: dict[str, str],
                     report: Callable[[str], None], timeout: float = 300.0) -> Installed:
    """Install or upgrade the platform and wait until its pods have rolled out."""
    if len(set(ports)) != 3:
        raise InstallError(f"the gateway's ports {ports} must differ from each other")
    report(f"certificates in {pki_dir}")
    pki = ensure_own_platform_pki(pki_dir, hosts=(endpoint,))
    values = _values(image=image, endpoint=endpoint, pki=pki, ports=ports,
                     gateway_nodes=gateway_nodes)
    report("CRDs, RBAC and the admission webhook")
    token = install(client, WebhookEndpoint(url=values.platform_url + WEBHOOK_PATH,
                                            ca_pem=pki.ca.cert.read_text()))
    report("the gateway, controller and API server workloads")
    apply_set(client, name=PLATFORM_SET, namespace=SYSTEM_NAMESPACE,
              manifests=platform_workloads(values, pki))
    deadline = time.monotonic() + timeout
    for kind, name in (("daemonset", GATEWAY_SERVICE), ("deployment", SERVER),
                       ("deployment", CONTROLLER)):
        while (state := rollout(client, kind, name, SYSTEM_NAMESPACE)) != "ok":
            if time.monotonic() > deadline:
                raise InstallError(
                    f"{kind} {SYSTEM_NAMESPACE}/{name} did not roll out in {timeout:.0f}s: "
                    f"{state}; `kubectl -n {SYSTEM_NAMESPACE} describe {kind} {name}` says "
                    "why (an image the nodes cannot pull, no node matching the gateway's "
                    "selector, a port taken on them)")
            report(f"{kind} {name}: {state}")
            time.sleep(1)
    return Installed(url=values.platform_url, ca=pki.ca.cert, token=token)
