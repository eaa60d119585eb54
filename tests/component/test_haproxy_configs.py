"""The built HAProxy accepts every configuration the platform renders (`haproxy -c`):
the gateway's whole configuration, and the agent's."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from kubeglobe.agent.apiserver_certificate import ClientCertificate
from kubeglobe.agent.gateway_link import Apiserver, GatewayGrant, link_files
from kubeglobe.certfiles import CertPair, ensure_ca, ensure_cert
from kubeglobe.gateway.backends import cluster_backend, render
from kubeglobe.gateway.config import render_gateway_config
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.reverse import AgentPort, ServersPort, render_reverse, reverse_backend
from kubeglobe.gateway.servers import render_servers
from kubeglobe.kube.endpoints import Ready
from kubeglobe.kube.rest import Credentials
from kubeglobe.local.loadbalancer import render_haproxy_config
from kubeglobe.local.topology import plan_environment

UID = "0f5c8a3e-1b2d-4c6e-9a7b-3d2e1f0a9b8c"


def check(haproxy: Path, *configs: Path) -> None:
    argv = [str(haproxy), "-c"] + [arg for c in configs for arg in ("-f", str(c))]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_haproxy_accepts_the_whole_gateway_configuration(tmp_path: Path,
                                                         haproxy_bin: Path) -> None:
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="t")
    # as a mounted TLS Secret has it: the certificate, and its key beside it
    serving = CertPair(cert=tmp_path / "tls" / "tls.crt", key=tmp_path / "tls" / "tls.key")
    ensure_cert(issuer=ca, pair=serving, common_name="kubeglobe-server", server=True)
    pem = serving.cert
    with tempfile.TemporaryDirectory(prefix="gw", dir="/tmp") as short:  # socket paths fit
        files = GatewayFiles(Path(short))
        files.certs.mkdir(parents=True)
        main = files.base
        main.write_text(render_gateway_config(files=files, platform_bind=":20216",
                                              serving_pem=str(pem)))
        bundle = pem.read_bytes() + serving.key.read_bytes()
        imported = Credentials(server="https://10.250.1.1:20026", ca=ca.pair.cert.read_bytes(),
                               cert=bundle, key=b"", token=None, insecure=False)
        out = render([cluster_backend("workload-1", imported)], files.certs)
        for path, content in out.files.items():
            path.write_bytes(content)
        reverse = reverse_backend("workload-2", UID)
        assert reverse is not None
        agent_side = render_reverse(
            AgentPort(bind="127.0.0.1:20017", serving_pem=pem, agents_ca=ca.pair.cert),
            [reverse],
            ServersPort(bind="127.0.0.1:20018", serving_pem=pem, servers_ca=ca.pair.cert))
        for m in (files.identities, files.clusters):
            m.write_text("")
        # the API servers' backend, before the gateway has seen a replica and with two
        for replicas in ([], [Ready("kubeglobe-server-a", "10.201.4.7", 8443),
                              Ready("kubeglobe-server-b", "10.201.5.2", 8443)]):
            servers = render_servers(replicas, ca.pair.cert)
            files.backends.write_text(out.config + "\n" + agent_side + "\n" + servers)
            check(haproxy_bin, main, files.backends)


def test_haproxy_accepts_the_environments_load_balancer(tmp_path: Path,
                                                        haproxy_bin: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=1, workload_clusters=0)
    main = tmp_path / "haproxy.cfg"
    main.write_text(render_haproxy_config(env=env, cluster=env.clusters[0],
                                          ca_file=str(tmp_path / "ca.crt")))
    (tmp_path / "ca.crt").write_bytes(ensure_ca(
        pair=CertPair(cert=tmp_path / "c.crt", key=tmp_path / "c.key"),
        common_name="t").pair.cert.read_bytes())
    check(haproxy_bin, main)


def test_haproxy_accepts_the_agents_configuration(tmp_path: Path, haproxy_bin: Path) -> None:
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="t")
    pair = CertPair(cert=tmp_path / "c.crt", key=tmp_path / "c.key")
    ensure_cert(issuer=ca, pair=pair, common_name="kubeglobe-agent", client=True)
    cert = ClientCertificate(cert_pem=pair.cert.read_bytes(), key_pem=pair.key.read_bytes())
    api = Apiserver(host="10.96.1.1", port=443, ca_pem=ca.pair.cert.read_bytes(),
                    certificate=cert)
    files = link_files(directory=tmp_path, cluster="w2", grant=GatewayGrant(
        certificate=cert, address="10.250.0.1:20017", ca_pem=ca.pair.cert.read_bytes()),
        apiserver=api)
    for path, content in files.items():
        path.write_bytes(content)
    check(haproxy_bin, tmp_path / "haproxy.cfg")
