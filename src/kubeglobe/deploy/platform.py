"""Everything the platform's ApplySet holds (pure but for reading the PKI's files): the
Secrets its pods mount, the gateway, the controller and the API servers."""

from __future__ import annotations

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.certfiles import CertPair
from kubeglobe.deploy.gateway import gateway_manifests
from kubeglobe.deploy.manifests import (
    AGENTS_CA,
    GATEWAY_CLIENT,
    SERVER_TLS,
    Manifest,
    controller_manifests,
    server_manifests,
)
from kubeglobe.deploy.pki import PlatformPki
from kubeglobe.deploy.values import PlatformValues


def _tls_secret(name: str, pair: CertPair) -> Manifest:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE},
            "stringData": {"tls.crt": pair.cert.read_text(), "tls.key": pair.key.read_text()}}


def platform_workloads(values: PlatformValues, pki: PlatformPki) -> list[Manifest]:
    return [
        _tls_secret(SERVER_TLS, pki.serving),
        _tls_secret(AGENTS_CA, pki.agents_ca),
        _tls_secret(GATEWAY_CLIENT, pki.gateway_client),
        *gateway_manifests(values, servers_ca_pem=pki.servers_ca.cert.read_text()),
        *controller_manifests(values),
        *server_manifests(values),
    ]
