"""Certificates for one local cluster, made with `cryptography`.

Each cluster gets its own CA for Kubernetes and its own CA for etcd, serving
certificates whose SANs cover every address a client uses, client certificates for the
admin and every control-plane component, and a service-account signing key. Files are
written once: an existing, readable certificate is kept, so `up` after `up` never
re-issues credentials that running processes already hold. It never starts processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from kubeglobe.certfiles import CertPair, ensure_ca, ensure_cert, key_pem, new_key
from kubeglobe.deploy.pki import PlatformPki, ensure_platform_certs
from kubeglobe.files import write_atomic
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan


@dataclass(frozen=True)
class ClusterPki(PlatformPki):
    """Paths of every credential of one cluster (see `ensure_cluster_pki`); global's
    also holds the platform's (`PlatformPki`), signed by its CA."""

    @property
    def etcd_ca(self) -> CertPair:
        return self.pair("etcd-ca")

    @property
    def service_account(self) -> CertPair:
        """Only `.key` (private) and `.cert` (the public key, PEM) are used."""
        return CertPair(cert=self.dir / "sa.pub", key=self.dir / "sa.key")


API_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _with(ips: tuple[str, ...], *more: str) -> tuple[str, ...]:
    """`ips` and then `more`, each once, in order."""
    return tuple(dict.fromkeys((*ips, *more)))


def ensure_cluster_pki(*, env: EnvironmentPlan, cluster: ClusterPlan) -> ClusterPki:
    """Create every credential the cluster's processes need; keep what already exists."""
    pki = ClusterPki(dir=env.cluster_dir(cluster.name) / "pki")
    ca = ensure_ca(pair=pki.ca, common_name=f"kubeglobe-{cluster.name}-ca")
    etcd_ca = ensure_ca(pair=pki.etcd_ca, common_name=f"kubeglobe-{cluster.name}-etcd-ca")
    host_ips = ("127.0.0.1", env.host_ip)
    for member in cluster.etcd:
        ensure_cert(
            issuer=etcd_ca, pair=pki.pair(f"etcd-{member.name}"), common_name=member.name,
            dns_names=("localhost",), ip_addresses=_with(host_ips, member.ip), server=True,
            client=True,
        )
    ensure_cert(
        issuer=etcd_ca, pair=pki.pair("etcd-client"), common_name="kube-apiserver-etcd-client",
        client=True,
    )
    ensure_cert(
        issuer=ca, pair=pki.pair("apiserver"), common_name="kube-apiserver",
        dns_names=API_DNS_NAMES,
        ip_addresses=_with(host_ips, *(a.ip for a in cluster.apiservers),
                           cluster.kubernetes_service_ip),
        server=True,
    )
    ensure_cert(
        issuer=ca, pair=pki.pair("control-plane-serving"), common_name="kube-control-plane",
        dns_names=("localhost",), server=True,
        ip_addresses=_with(host_ips, *(d.ip for d in (*cluster.controller_managers,
                                                      *cluster.schedulers))),
    )
    clients = {
        "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
        "admin": ("kubeglobe-admin", ("system:masters",)),
        "controller-manager": ("system:kube-controller-manager", ()),
        "scheduler": ("system:kube-scheduler", ()),
        "kube-proxy": ("system:kube-proxy", ()),
    }
    for file_name, (cn, orgs) in clients.items():
        ensure_cert(
            issuer=ca, pair=pki.pair(file_name), common_name=cn, organizations=orgs, client=True
        )
    for node in cluster.nodes:
        ensure_cert(
            issuer=ca, pair=pki.pair(f"kubelet-{node.name}"),
            common_name=f"system:node:{node.name}", organizations=("system:nodes",),
            client=True,
        )
        ensure_cert(
            issuer=ca, pair=pki.pair(f"kubelet-serving-{node.name}"), common_name=node.name,
            dns_names=(node.name,), ip_addresses=(node.ip,), server=True,
        )
    if cluster.platform_endpoint_port is not None:
        ensure_platform_certs(pki, ca=ca, hosts=host_ips, label=cluster.name)
    _ensure_service_account_key(pki.service_account)
    return pki


def _ensure_service_account_key(pair: CertPair) -> None:
    if pair.key.exists() and pair.cert.exists():
        return
    key = new_key()
    write_atomic(pair.key, key_pem(key))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(pair.cert, public, 0o644)
