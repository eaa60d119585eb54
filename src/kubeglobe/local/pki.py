"""Certificates for one local cluster, made with `cryptography`.

Each cluster gets its own CA for Kubernetes and its own CA for etcd, serving
certificates whose SANs cover every address a client uses, client certificates for the
admin and every control-plane component, and a service-account signing key. Files are
written once: an existing, readable certificate is kept, so `up` after `up` never
re-issues credentials that running processes already hold. It never starts processes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.files import write_atomic
from kubeglobe.local.topology import ClusterPlan, EnvironmentPlan

VALIDITY = dt.timedelta(days=365)
PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: PrivateKey
    pair: CertPair


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(pair: CertPair) -> tuple[x509.Certificate, PrivateKey] | None:
    if not (pair.cert.exists() and pair.key.exists()):
        return None
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pair.key} is not an EC key; delete the cluster's pki directory")
    return cert, key


def _sign(
    *, pair: CertPair, key: PrivateKey, subject: x509.Name, issuer: x509.Name,
    signer: PrivateKey, validity: dt.timedelta, ca: bool,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """Sign a certificate for `key` (with the constraints and usages a CA or a leaf has,
    then `extensions`) and write both, the key private."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=not ca,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.sign(signer, hashes.SHA256())
    write_atomic(pair.key, _key_pem(key))
    write_atomic(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert


def ensure_ca(*, pair: CertPair, common_name: str) -> Issuer:
    loaded = _load(pair)
    if loaded is not None:
        return Issuer(cert=loaded[0], key=loaded[1], pair=pair)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _sign(
        pair=pair, key=key, subject=name, issuer=name, signer=key, validity=10 * VALIDITY,
        ca=True, extensions=[(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)],
    )
    return Issuer(cert=cert, key=key, pair=pair)


def ensure_cert(
    *,
    issuer: Issuer,
    pair: CertPair,
    common_name: str,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> CertPair:
    """Issue a leaf certificate unless a valid one from this issuer with these SANs exists."""
    loaded = _load(pair)
    if loaded is not None and _still_fits(loaded[0], issuer, dns_names, ip_addresses) and (
        loaded[0].public_key() == loaded[1].public_key()
    ):
        return pair
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.ExtendedKeyUsage(usages), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False),
    ]
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    if sans:
        extensions.append((x509.SubjectAlternativeName(sans), False))
    _sign(
        pair=pair, key=_new_key(), subject=x509.Name(attrs), issuer=issuer.cert.subject,
        signer=issuer.key, validity=VALIDITY, ca=False, extensions=extensions,
    )
    return pair


def _still_fits(
    cert: x509.Certificate, issuer: Issuer, dns_names: tuple[str, ...], ips: tuple[str, ...]
) -> bool:
    try:
        cert.verify_directly_issued_by(issuer.cert)  # a regenerated CA re-issues its leaves
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return not dns_names and not ips
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    return set(dns_names) <= have_dns and set(ips) <= have_ips


@dataclass(frozen=True)
class ClusterPki:
    """Paths of every credential of one cluster (see `ensure_cluster_pki`)."""

    dir: Path

    def pair(self, name: str) -> CertPair:
        return CertPair(cert=self.dir / f"{name}.crt", key=self.dir / f"{name}.key")

    @property
    def ca(self) -> CertPair:
        return self.pair("ca")

    @property
    def agents_ca(self) -> CertPair:
        return self.pair("agents-ca")

    @property
    def servers_ca(self) -> CertPair:
        return self.pair("servers-ca")

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
        # Signs only agents' certificates for the gateway's agent port: a certificate
        # of the cluster CA would also log in to the global apiserver.
        ensure_ca(pair=pki.agents_ca, common_name=f"kubeglobe-{cluster.name}-agents-ca")
        ensure_cert(
            issuer=ca, pair=pki.pair("platform-server"), common_name="kubeglobe-server",
            dns_names=("localhost", PLATFORM_TLS_NAME), ip_addresses=host_ips, server=True,
        )
        # Signs only the servers' client certificate for the gateway's port to the
        # agents, which lets its holder act as anyone on any registered cluster.
        servers_ca = ensure_ca(pair=pki.servers_ca,
                               common_name=f"kubeglobe-{cluster.name}-servers-ca")
        ensure_cert(
            issuer=servers_ca, pair=pki.pair("platform-server-client"),
            common_name="kubeglobe-server", client=True,
        )
    _ensure_service_account_key(pki.service_account)
    return pki


def _ensure_service_account_key(pair: CertPair) -> None:
    if pair.key.exists() and pair.cert.exists():
        return
    key = _new_key()
    write_atomic(pair.key, _key_pem(key))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(pair.cert, public, 0o644)
