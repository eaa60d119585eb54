"""Reverse HTTP, pure parts: the agents' certificates, the gateway's rules and routes,
the agent's HAProxy configuration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeglobe.agent.apiserver_certificate import ClientCertificate, new_request
from kubeglobe.agent.gateway_link import (
    FORGET_SECONDS,
    Apiserver,
    GatewayGrant,
    GatewayReplicas,
    link_files,
    render_config,
)
from kubeglobe.certfiles import CertPair, ensure_ca
from kubeglobe.gateway.reverse import (
    AgentPort,
    ServersPort,
    attached,
    render_reverse,
    reverse_backend,
)
from kubeglobe.hub.agent_certificates import (
    AgentsCA,
    RequestRefused,
    load_agents_ca,
    sign_agent_request,
)

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
UID = "0f5c8a3e-1b2d-4c6e-9a7b-3d2e1f0a9b8c"


def agents_ca(tmp_path: Path) -> AgentsCA:
    issuer = ensure_ca(pair=CertPair(cert=tmp_path / "a.crt", key=tmp_path / "a.key"),
                       common_name="agents")
    return load_agents_ca(cert=issuer.pair.cert, key=issuer.pair.key)


def test_an_agent_certificate_names_the_cluster_and_its_uid_whatever_the_request_asks(
        tmp_path: Path) -> None:
    ca = agents_ca(tmp_path)
    pending = new_request("workload-2")  # its subject says kubeglobe-agent: ignored
    pem = sign_agent_request(pending.csr_pem, cluster="workload-2", cluster_uid=UID, ca=ca,
                             now=NOW)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "workload-2"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == UID
    assert cert.issuer == ca.cert.subject
    assert cert.not_valid_after_utc - NOW == dt.timedelta(days=30)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = ca.cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert ClientCertificate(cert_pem=pem, key_pem=pending.key_pem).pair_matches()


def test_bad_requests_are_refused_with_the_reason(tmp_path: Path) -> None:
    ca = agents_ca(tmp_path)
    with pytest.raises(RequestRefused, match="not a PEM CSR"):
        sign_agent_request(b"hello", cluster="w", cluster_uid=UID, ca=ca, now=NOW)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(small, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(RequestRefused, match="1024 bits is too small"):
        sign_agent_request(csr, cluster="w", cluster_uid=UID, ca=ca, now=NOW)


def test_an_agents_ca_whose_key_is_not_its_own_is_refused(tmp_path: Path) -> None:
    one = ensure_ca(pair=CertPair(cert=tmp_path / "1.crt", key=tmp_path / "1.key"),
                    common_name="one")
    two = ensure_ca(pair=CertPair(cert=tmp_path / "2.crt", key=tmp_path / "2.key"),
                    common_name="two")
    with pytest.raises(ValueError, match="is not the key of"):
        load_agents_ca(cert=one.pair.cert, key=two.pair.key)
    with pytest.raises(ValueError, match="cannot read the agents CA"):
        load_agents_ca(cert=tmp_path / "missing.crt", key=one.pair.key)


PORT = AgentPort(bind="10.0.0.1:9443", serving_pem=Path("/gw/serving.pem"),
                 agents_ca=Path("/pki/agents-ca.crt"))
SERVERS = ServersPort(bind="10.0.0.1:9444", serving_pem=Path("/gw/serving.pem"),
                      servers_ca=Path("/pki/servers-ca.crt"))


def test_the_gateway_attaches_agents_by_their_clusters_uid_and_refuses_the_rest() -> None:
    b = reverse_backend("workload-2", UID)
    assert b is not None
    lines = render_reverse(PORT, [b], SERVERS).splitlines()
    assert ("    bind 10.0.0.1:9443 ssl crt /gw/serving.pem ca-file /pki/agents-ca.crt "
            "verify required alpn h2") in lines
    assert (f"    tcp-request session attach-srv kg-reverse-workload-2/agent "
            f"if {{ ssl_c_s_dn(O) -m str {UID} }}") in lines
    assert f"    tcp-request session reject unless {{ ssl_c_s_dn(O) -m str {UID} }}" in lines
    assert "    server agent rhttp@" in lines
    # the caller's identity is the gateway's business, except for what the servers send
    assert "    acl kg_from_servers fe_name kg-servers-to-agents" in lines
    assert "    http-request del-header (?i)^impersonate- -m reg if !kg_from_servers" in lines
    assert "    http-request del-header Authorization if !kg_from_servers" in lines
    assert ("    bind 10.0.0.1:9444 ssl crt /gw/serving.pem ca-file /pki/servers-ca.crt "
            "verify required alpn http/1.1") in lines
    # an upgrade's method crosses HTTP/2 beside it; a caller's own copy never does
    assert lines.index("    http-request del-header X-KubeGlobe-Method") < lines.index(
        "    http-request set-header X-KubeGlobe-Method %[method] if { req.hdr(upgrade) -m found }")
    assert "    default_backend kg-no-agent" in lines  # a cluster not rendered yet
    assert "    http-request return status 503 hdr X-KubeGlobe-Agent-Detached yes" in lines
    detached = [line for line in lines if "http-error status 503" in line]
    assert detached and detached[0].endswith(" hdr X-KubeGlobe-Agent-Detached yes")
    assert "    http-reuse always" in lines  # HTTP/2: requests share the agent's connections
    none = render_reverse(PORT, [], SERVERS).splitlines()
    assert "    tcp-request session reject" in none


def test_a_uid_that_is_not_a_kubernetes_uid_gets_no_reverse_backend() -> None:
    assert reverse_backend("w", "") is None
    assert reverse_backend("w", "x } || { always_true") is None


def test_attached_agents_are_read_from_haproxys_connection_table() -> None:
    listing = (
        "# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est "
        "unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[2]\n"
        "kg-reverse-a/agent 3/1 - 0 - 5000 0 1 1 0 2 -1 2 1 1\n"   # idle
        "kg-reverse-b/agent 4/1 - 0 - 5000 1 1 1 0 0 -1 0 0 0\n"   # busy
        "kg-reverse-c/agent 5/1 - 0 - 5000 0 0 0 0 0 -1 0 0 0\n"   # none
        "kg-cluster-a/apiserver 6/1 10.0.0.9 443 - 30000 0 1 1 0 1 -1 1 1 0\n")
    assert attached(listing) == {"kg-reverse-a", "kg-reverse-b"}


def test_the_agents_haproxy_attaches_to_the_gateway_and_serves_from_its_apiserver(
        tmp_path: Path) -> None:
    cert = ClientCertificate(cert_pem=b"CERT\n", key_pem=b"KEY\n")
    api = Apiserver(host="10.96.1.1", port=443, ca_pem=b"CA", certificate=cert)
    config = render_config(directory=Path("/d"), cluster="w2",
                           gateways=("10.250.1.11:20017", "10.250.1.12:20017"), apiserver=api)
    lines = config.splitlines()
    # attached to each gateway replica: each serves only the agents it holds
    assert "    bind rhttp@hub/gateway-0 nbconn 2" in lines
    assert "    bind rhttp@hub/gateway-1 nbconn 2" in lines
    assert "    http-request set-method %[req.hdr(X-KubeGlobe-Method)] if upgrade_method" in lines
    # a replica's address is in no certificate: checked for the platform's name
    assert ("    server gateway-1 10.250.1.12:20017 ssl crt /d/gateway-client.pem ca-file "
            "/d/gateway-ca.pem verify required sni str(kubeglobe-platform) "
            "verifyhost kubeglobe-platform alpn h2") in lines
    assert ("    server apiserver 10.96.1.1:443 ssl crt /d/apiserver-client.pem ca-file "
            "/d/apiserver-ca.pem verify required alpn http/1.1") in lines
    assert any("http-error status 503" in line and "not reachable from its agent" in line
               and "cluster w2" in line for line in lines)  # a Status, not HTML
    files = link_files(directory=tmp_path, cluster="w2", grant=GatewayGrant(
        certificate=cert, address="10.0.0.1:1", ca_pem=b"GWCA"), apiserver=api)
    assert files[tmp_path / "gateway-client.pem"] == b"CERT\nKEY\n"
    assert files[tmp_path / "apiserver-ca.pem"] == b"CA"
    assert b"server gateway-0 10.0.0.1:1 ssl" in files[tmp_path / "haproxy.cfg"]  # no list
    assert b"gateway-1" not in files[tmp_path / "haproxy.cfg"]


def test_a_gateway_replica_the_hub_stops_listing_is_kept_a_while_then_let_go() -> None:
    gateways = GatewayReplicas()
    gateways.update(["10.0.0.12:20017", "10.0.0.11:20017", "10.0.0.13:20017"], now=0.0)
    assert gateways.addresses == ("10.0.0.11:20017", "10.0.0.12:20017", "10.0.0.13:20017")
    # one replica's pod not ready for a moment, then a listing that failed (none): kept
    gateways.update(["10.0.0.11:20017", "10.0.0.13:20017"], now=10.0)
    gateways.update([], now=20.0)
    assert len(gateways.addresses) == 3
    gateways.update(["10.0.0.11:20017", "10.0.0.13:20017"], now=FORGET_SECONDS + 1)
    assert gateways.addresses == ("10.0.0.11:20017", "10.0.0.13:20017")
    gateways.update(["10.0.0.12:20017"], now=FORGET_SECONDS + 2)  # back: at once
    assert "10.0.0.12:20017" in gateways.addresses
