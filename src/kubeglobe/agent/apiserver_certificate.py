"""The agent's own client certificate for its apiserver, from the cluster's CSR API.

The agent's HAProxy (`gateway_link.py`) can add no bearer token, so it authenticates
with a client certificate: a CertificateSigningRequest for
`kubernetes.io/kube-apiserver-client`, approved by the agent itself. Its user,
`kubeglobe-agent`, may only impersonate, so a request without the hub's impersonation
headers is refused. The key never leaves the workload cluster.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.certificates_v1 import (
    CertificateSigningRequestCondition,
    CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.certificates_v1 import (
    CertificateSigningRequest,
    CertificateSigningRequestApproval,
)

from kubeglobe import failures
from kubeglobe.keys import belongs, public_der
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.rest import load_client_pair

log = logging.getLogger("kubeglobe.agent.certificate")
AGENT_USER = "kubeglobe-agent"
SIGNER = "kubernetes.io/kube-apiserver-client"
SIGN_SECONDS = 60.0  # how long the agent waits for the controller-manager to sign
POLL_SECONDS = 0.5


class CertificateUnavailable(RuntimeError):
    """The cluster did not issue a certificate; says why (the agent then keeps using
    its slower per-request path)."""


@dataclass(frozen=True)
class ClientCertificate:
    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def pair_matches(self) -> bool:
        """The key is the certificate's own (a half-written pair is not)."""
        return belongs(self.certificate,
                       serialization.load_pem_private_key(self.key_pem, password=None))

    def renew_at(self) -> dt.datetime:
        cert = self.certificate
        return renew_at(cert.not_valid_before_utc, cert.not_valid_after_utc)

    def ssl_context(self, ca_pem: bytes) -> ssl.SSLContext:
        """A TLS context trusting the cluster's CA and presenting this certificate."""
        context = ssl.create_default_context(cadata=ca_pem.decode())
        load_client_pair(context, self.cert_pem, self.key_pem)
        return context


def renew_at(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """When to ask for the next certificate: two thirds into this one's lifetime."""
    return not_before + (not_after - not_before) * 2 / 3


def due(found: ClientCertificate | None, now: dt.datetime) -> bool:
    """True when there is no usable certificate (none, unreadable, a key that is not its
    own) or it is time to renew it."""
    if found is None:
        return True
    try:
        return not found.pair_matches() or now >= found.renew_at()
    except (ValueError, TypeError) as e:  # not a certificate or key at all: replace it
        failures.caught(log, component="agent-certificate",
                        operation="reading the stored certificate (replacing it)", error=e)
        return True


def expired(found: ClientCertificate, now: dt.datetime) -> bool:
    try:
        return now >= found.certificate.not_valid_after_utc
    except ValueError as e:  # unreadable: as good as expired
        failures.caught(log, component="agent-certificate",
                        operation="reading the certificate's expiry", error=e)
        return True


@dataclass(frozen=True)
class PendingRequest:
    name: str
    key_pem: bytes
    csr_pem: bytes


def new_request(cluster: str) -> PendingRequest:
    """A fresh key and its signing request; the name follows from the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, AGENT_USER)]))
           .sign(key, hashes.SHA256()))
    digest = hashlib.sha256(public_der(key.public_key())).hexdigest()[:12]
    return PendingRequest(
        name=f"kubeglobe-agent-{cluster}-{digest}"[:253],
        key_pem=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        csr_pem=csr.public_bytes(serialization.Encoding.PEM))


def issued(csr: CertificateSigningRequest) -> bytes | None:
    """The signed certificate, None while pending; CertificateUnavailable if refused."""
    status = csr.status
    for condition in (status.conditions or []) if status else []:
        if condition.type in ("Denied", "Failed") and condition.status == "True":
            raise CertificateUnavailable(
                f"the cluster {condition.type.lower()} the agent's certificate request: "
                f"{condition.message or condition.reason or 'no reason given'}")
    if status is None or not status.certificate:
        return None
    return base64.b64decode(status.certificate)


async def obtain(client: AsyncClient, cluster: str) -> ClientCertificate:
    """Ask the cluster for a new certificate, approve the request, wait for the signature."""
    pending = new_request(cluster)
    csr = CertificateSigningRequest(
        metadata=ObjectMeta(name=pending.name,
                            labels={"app.kubernetes.io/managed-by": "kubeglobe"}),
        spec=CertificateSigningRequestSpec(
            request=base64.b64encode(pending.csr_pem).decode(), signerName=SIGNER,
            usages=["digital signature", "client auth"]))
    try:
        await client.create(csr)
        await client.replace(CertificateSigningRequestApproval(
            metadata=ObjectMeta(name=pending.name),
            spec=csr.spec,
            status=CertificateSigningRequestStatus(conditions=[
                CertificateSigningRequestCondition(
                    type="Approved", status="True", reason="KubeGlobeAgent",
                    message="the kubeglobe agent's certificate for the hub's proxied "
                            "connections; its user may only impersonate")])), pending.name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SIGN_SECONDS
        while (cert := issued(await client.get(CertificateSigningRequest,
                                               pending.name))) is None:
            if loop.time() > deadline:
                raise CertificateUnavailable(
                    f"the cluster did not sign request {pending.name} within "
                    f"{SIGN_SECONDS:.0f} s: is its controller-manager signing for "
                    f"{SIGNER} (--cluster-signing-cert-file)?")
            await asyncio.sleep(POLL_SECONDS)
    except ApiError as e:
        raise CertificateUnavailable(
            f"certificate request {pending.name} failed: {e.status.message}") from e
    finally:
        try:  # the request has done its work (or failed): leave nothing behind
            await client.delete(CertificateSigningRequest, pending.name)
        except KUBE_ERRORS as e:  # refused or unreachable: keep the error that led here
            if not (isinstance(e, ApiError) and e.status.code == 404):
                log.warning("could not delete certificate request %s (delete it by hand): "
                            "%s: %s", pending.name, type(e).__name__, e)
                failures.count(component="agent-certificate",
                               operation="deleting the certificate request", error=e)
    return ClientCertificate(cert_pem=cert, key_pem=pending.key_pem)
