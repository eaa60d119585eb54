"""Client certificates that let a registered cluster's agent attach to the gateway.

HAProxy's reverse HTTP (`gateway/reverse.py`) knows whose connection it holds only from
its TLS client certificate, so the platform signs one per agent with an agents CA used
for nothing else (one of the global cluster's CA would also log in to its apiserver).
The subject is the cluster (CN) and its Cluster's UID (O): a cluster registered again
under the same name gets a new UID, so an old agent's certificate attaches nowhere.
Pure: the request, the issuer and the clock come in, PEM goes out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeglobe.keys import belongs

VALIDITY = dt.timedelta(days=30)  # the agent renews at two thirds
MIN_RSA_BITS = 2048


class RequestRefused(ValueError):
    """The agent's certificate request cannot be signed; the message says why."""


@dataclass(frozen=True)
class AgentsCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def load_agents_ca(*, cert: Path, key: Path) -> AgentsCA:
    """The agents CA from its PEM files (a clear error when they do not fit)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the agents CA from {cert} and {key}: {e}; pass the "
                         "PEM certificate and key of the CA that signs agents' gateway "
                         "certificates") from e
    if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key} is neither an EC nor an RSA key")
    if not belongs(certificate, private):
        raise ValueError(f"{key} is not the key of {cert}")
    return AgentsCA(cert=certificate, key=private)


def sign_agent_request(csr_pem: bytes, *, cluster: str, cluster_uid: str, ca: AgentsCA,
                       now: dt.datetime) -> bytes:
    """The agent's gateway client certificate for the key in `csr_pem`; only that key is
    used, so an agent cannot ask for another cluster's name."""
    try:
        request = x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise RequestRefused(f"the certificate request is not a PEM CSR: {e}") from e
    if not request.is_signature_valid:
        raise RequestRefused("the certificate request's signature does not match its key")
    key = request.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise RequestRefused(f"an RSA key of {key.key_size} bits is too small; use "
                                 f"{MIN_RSA_BITS} bits or more, or an EC key")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise RequestRefused("the certificate request's key must be EC or RSA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_uid),
                                 x509.NameAttribute(NameOID.COMMON_NAME, cluster)]))
        .issuer_name(ca.cert.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
