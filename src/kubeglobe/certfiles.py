"""Certificates kept in files, made with `cryptography`: CAs and the leaves they sign.

Written once: an existing, readable certificate is kept while it is valid, from the same
issuer and covers the names asked for, so running `ensure_*` again re-issues nothing a
running process holds. Keys are EC P-256, private files; certificates are readable.
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

from kubeglobe.files import write_atomic

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


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
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
    write_atomic(pair.key, key_pem(key))
    write_atomic(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert


def ensure_ca(*, pair: CertPair, common_name: str) -> Issuer:
    loaded = _load(pair)
    if loaded is not None:
        return Issuer(cert=loaded[0], key=loaded[1], pair=pair)
    key = new_key()
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
        pair=pair, key=new_key(), subject=x509.Name(attrs), issuer=issuer.cert.subject,
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
