from pathlib import Path

from cryptography import x509

from kubeglobe.local.pki import ensure_cluster_pki
from kubeglobe.local.topology import plan_environment


def _sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(i) for i in san.get_values_for_type(x509.IPAddress)
    }


def test_apiserver_cert_covers_every_address(tmp_path: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=2, workload_clusters=1)
    cluster = env.cluster("global")
    pki = ensure_cluster_pki(env=env, cluster=cluster)
    dns, ips = _sans(pki.pair("apiserver").cert)
    assert {"127.0.0.1", "10.250.2.1", cluster.kubernetes_service_ip} <= ips
    assert "kubernetes.default.svc.cluster.local" in dns
    node = cluster.nodes[0]
    _, kubelet_ips = _sans(pki.pair(f"kubelet-serving-{node.name}").cert)
    assert kubelet_ips == {node.ip}


def test_admin_is_system_master_signed_by_cluster_ca(tmp_path: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=0, workload_clusters=0)
    pki = ensure_cluster_pki(env=env, cluster=env.clusters[0])
    ca = x509.load_pem_x509_certificate(pki.ca.cert.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.pair("admin").cert.read_bytes())
    assert admin.issuer == ca.subject
    orgs = [a.value for a in admin.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    admin.verify_directly_issued_by(ca)


def test_second_run_keeps_credentials(tmp_path: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=0, workload_clusters=0)
    pki = ensure_cluster_pki(env=env, cluster=env.clusters[0])
    before = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    ensure_cluster_pki(env=env, cluster=env.clusters[0])
    after = {p.name: p.read_bytes() for p in pki.dir.iterdir()}
    assert before == after
    assert oct(pki.pair("admin").key.stat().st_mode & 0o777) == "0o600"


def test_cert_reissued_when_sans_change(tmp_path: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=0, workload_clusters=0)
    pki = ensure_cluster_pki(env=env, cluster=env.clusters[0])
    old = pki.pair("apiserver").cert.read_bytes()
    moved = plan_environment(state_dir=tmp_path, slot=5, workload_clusters=0)
    ensure_cluster_pki(env=moved, cluster=moved.clusters[0])
    assert pki.pair("apiserver").cert.read_bytes() != old
    _, ips = _sans(pki.pair("apiserver").cert)
    assert "10.250.5.1" in ips


def test_only_the_platforms_serving_certificate_carries_its_name(tmp_path: Path) -> None:
    """The gateway and the servers check PLATFORM_TLS_NAME on each other: no other
    certificate of the cluster CA (apiserver, control plane, kubelets) may carry it; and
    the servers' client certificate for the gateway comes from a CA of its own."""
    env = plan_environment(state_dir=tmp_path, slot=0, workload_clusters=0)
    pki = ensure_cluster_pki(env=env, cluster=env.clusters[0])
    def names(path: Path) -> set[str]:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:  # client certificates name no host
            return set()
        return set(san.get_values_for_type(x509.DNSName))

    carrying = {p.stem for p in pki.dir.glob("*.crt") if "kubeglobe-platform" in names(p)}
    assert carrying == {"platform-server"}
    client = x509.load_pem_x509_certificate(pki.pair("platform-server-client").cert.read_bytes())
    servers_ca = x509.load_pem_x509_certificate(pki.servers_ca.cert.read_bytes())
    client.verify_directly_issued_by(servers_ca)
