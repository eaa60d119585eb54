"""The agent's client certificate: its request, when it is renewed, what a refusal says."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube.models.certificates_v1 import (
    CertificateSigningRequestCondition,
    CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
)
from lightkube.resources.certificates_v1 import CertificateSigningRequest

from kubeglobe.agent.apiserver_certificate import (
    AGENT_USER,
    CertificateUnavailable,
    ClientCertificate,
    due,
    issued,
    new_request,
    renew_at,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def signed(pending_key: bytes, days: int) -> ClientCertificate:
    """A certificate for the key, signed by a throwaway CA: what the cluster would issue."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = serialization.load_pem_private_key(pending_key, password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, AGENT_USER)])
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
            .public_key(key.public_key())  # type: ignore[arg-type]
            .serial_number(1).not_valid_before(START)
            .not_valid_after(START + dt.timedelta(days=days))
            .sign(ca_key, hashes.SHA256()))
    return ClientCertificate(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                             key_pem=pending_key)


def test_the_request_names_the_agent_user_and_follows_from_its_key() -> None:
    one, two = new_request("workload-2"), new_request("workload-2")
    csr = x509.load_pem_x509_csr(one.csr_pem)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == AGENT_USER
    assert csr.is_signature_valid
    assert one.name.startswith("kubeglobe-agent-workload-2-") and one.name != two.name
    assert b"PRIVATE KEY" in one.key_pem


def test_renewal_comes_two_thirds_into_the_lifetime() -> None:
    assert renew_at(START, START + dt.timedelta(days=30)) == START + dt.timedelta(days=20)
    found = signed(new_request("w").key_pem, days=30)
    assert not due(found, START + dt.timedelta(days=19))
    assert due(found, START + dt.timedelta(days=20))
    assert due(None, START)
    assert due(ClientCertificate(cert_pem=b"not a certificate", key_pem=b""), START)


def test_a_signed_request_gives_its_certificate_and_a_denied_one_says_so() -> None:
    spec = CertificateSigningRequestSpec(request="", signerName="s")
    pending = CertificateSigningRequest(spec=spec)
    assert issued(pending) is None
    done = CertificateSigningRequest(spec=spec, status=CertificateSigningRequestStatus(
        certificate=base64.b64encode(b"PEM").decode()))
    assert issued(done) == b"PEM"
    denied = CertificateSigningRequest(spec=spec, status=CertificateSigningRequestStatus(
        conditions=[CertificateSigningRequestCondition(type="Denied", status="True",
                                                       message="not for you")]))
    with pytest.raises(CertificateUnavailable, match=r"denied .*not for you"):
        issued(denied)
