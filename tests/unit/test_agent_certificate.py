"""The agent's client certificate: its request, when it is renewed, what a refusal says,
and when the agent's HAProxy may serve the apiserver with it (an in-memory store, an
issuer that signs with a throwaway CA: no cluster)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from collections.abc import Callable
from pathlib import Path

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
    expired,
    issued,
    new_request,
    renew_at,
)
from kubeglobe.agent.certificate_keeper import CertificateKeeper
from kubeglobe.certfiles import CertPair, ensure_ca
from kubeglobe.kube.upgrade import Endpoint

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
    other_key = ClientCertificate(cert_pem=found.cert_pem, key_pem=new_request("w").key_pem)
    assert due(other_key, START + dt.timedelta(days=1))  # a half-written pair is replaced
    assert not expired(found, START + dt.timedelta(days=29))
    assert expired(found, START + dt.timedelta(days=30))


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


class MemoryStore:
    def __init__(self, found: ClientCertificate | None = None) -> None:
        self.found = found
        self.saves = 0

    async def load_certificate(self) -> ClientCertificate | None:
        return self.found

    async def save_certificate(self, found: ClientCertificate) -> None:
        self.found, self.saves = found, self.saves + 1


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded: 5 s) until `condition` holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true within 5 s")


def test_the_agents_haproxy_gets_the_apiserver_once_there_is_a_certificate(
        tmp_path: Path) -> None:
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="cluster-ca")
    ca_pem = ca.pair.cert.read_bytes()
    now = [START]
    asked: list[int] = []
    failing = [False]

    async def issue() -> ClientCertificate:
        asked.append(1)
        if failing[0]:
            raise CertificateUnavailable("the signer is away")
        return signed(new_request("w").key_pem, days=30)

    async def scenario() -> None:
        store = MemoryStore()
        apiserver = Endpoint(host="10.0.0.1", port=443, ssl=ssl.create_default_context(),
                             credentials={"Authorization": "Bearer sa"})
        keeper = CertificateKeeper(issue=issue, store=store, apiserver=apiserver,
                                   ca_pem=ca_pem, clock=lambda: now[0],
                                   sleep=lambda _: asyncio.sleep(0.01))
        assert keeper.for_gateway_link() is None
        task = asyncio.create_task(keeper.keep())
        await until(lambda: keeper.for_gateway_link() is not None)
        # Issued, kept in the store, handed to the agent's HAProxy with the cluster's CA.
        link = keeper.for_gateway_link()
        assert link is not None and (len(asked), store.saves) == (1, 1)
        assert (link.host, link.port, link.ca_pem) == ("10.0.0.1", 443, ca_pem)
        assert link.certificate == store.found
        # Renewal keeps failing until the certificate expires: the HAProxy loses it.
        failing[0] = True
        now[0] = START + dt.timedelta(days=31)
        await until(lambda: keeper.for_gateway_link() is None)
        assert len(asked) >= 2
        task.cancel()

    asyncio.run(scenario())


def test_a_stored_certificate_is_used_without_asking_the_cluster(tmp_path: Path) -> None:
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="cluster-ca")
    stored = signed(new_request("w").key_pem, days=30)

    async def never() -> ClientCertificate:
        raise AssertionError("a valid stored certificate needs no request")

    async def scenario() -> ClientCertificate | None:
        store = MemoryStore(stored)
        apiserver = Endpoint(host="h", port=1, ssl=ssl.create_default_context())
        keeper = CertificateKeeper(issue=never, store=store, ca_pem=ca.pair.cert.read_bytes(),
                                   apiserver=apiserver,
                                   clock=lambda: START + dt.timedelta(days=1))
        task = asyncio.create_task(keeper.keep())
        await until(lambda: keeper.certificate is not None)
        task.cancel()
        return keeper.certificate

    assert asyncio.run(scenario()) == stored


def test_an_apiserver_url_with_a_path_gets_no_certificate_for_the_agents_haproxy() -> None:
    async def scenario() -> object:
        keeper = CertificateKeeper(issue=lambda: never_called(), store=MemoryStore(),
                                   ca_pem=b"x",
                                   apiserver=Endpoint(host="h", port=1, base_path="/k8s",
                                                      ssl=ssl.create_default_context()))
        await asyncio.wait_for(keeper.keep(), 5)  # returns at once: nothing to keep
        return keeper.for_gateway_link()

    assert asyncio.run(scenario()) is None


async def never_called() -> ClientCertificate:
    raise AssertionError("not asked")
