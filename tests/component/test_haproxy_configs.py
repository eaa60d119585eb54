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


def test_haproxy_accepts_an_alb_instance_with_every_kind_of_rule(tmp_path: Path,
                                                                 haproxy_bin: Path) -> None:
    from kubeglobe.alb.render import Endpoint, render_instance
    from kubeglobe.api.alb import FrontendSpec, RuleSpec

    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="t")
    tls = CertPair(cert=tmp_path / "shop.crt", key=tmp_path / "shop.key")
    ensure_cert(issuer=ca, pair=tls, common_name="shop.example.com", server=True)
    (tmp_path / "shop.shop-tls.pem").write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    web = {"namespace": "shop", "service": "web", "port": 80}
    frontends = {
        "edge-80": FrontendSpec.model_validate({"gateway": "edge", "port": 18080}),
        "edge-443": FrontendSpec.model_validate({
            "gateway": "edge", "port": 18443, "protocol": "HTTPS",
            "certificate": {"namespace": "shop", "name": "shop-tls"}}),
        "db": FrontendSpec.model_validate({"gateway": "edge", "port": 15432, "protocol": "TCP",
                                           "defaultBackends": [{**web, "port": 5432}]})}
    rules = {name: RuleSpec.model_validate({"frontend": "edge-80", **spec}) for name, spec in {
        "cart": {"backends": [web], "match": {
            "hosts": ["shop.example.com", "*.shop.example.com"],
            "path": {"value": "/cart"}, "methods": ["GET"], "sourceRanges": ["10.0.0.0/8"],
            "headers": [{"name": "X-Canary", "type": "Regex", "value": "^(yes|1)$"}],
            "query": [{"name": "v", "value": 'a "quoted" one'}]},
            "rewrite": {"pathPrefix": "/basket", "host": "web.shop"},
            "affinity": {"type": "Cookie"}, "algorithm": "LeastConnections",
            "healthCheck": {"type": "HTTP", "path": "/healthz", "expectStatus": 204}},
        "sticky": {"backends": [web, {**web, "service": "v2", "weight": 3}],
                   "affinity": {"type": "SourceIP"}, "algorithm": "SourceHash",
                   "match": {"path": {"type": "Regex", "value": "^/api/v[0-9]+/"}}},
        "to-https": {"redirect": {"scheme": "https", "port": 18443, "code": 301},
                     "match": {"path": {"type": "Exact", "value": "/login"}}},
    }.items()}
    rules["secure"] = RuleSpec.model_validate({"frontend": "edge-443", "backends": [web]})
    endpoints = {("shop", "web", 80): [Endpoint("web-a", "10.200.1.2", 8080)],
                 ("shop", "v2", 80): [Endpoint("v2-a", "10.200.1.3", 8080)],
                 ("shop", "web", 5432): [Endpoint("web-a", "10.200.1.2", 5432)]}
    out = render_instance(frontends=frontends, rules=rules, endpoints=endpoints,
                          certs_dir=str(tmp_path))
    assert out.refused == {} and out.certificates == (("shop", "shop-tls"),)
    config = tmp_path / "alb.cfg"
    config.write_text("defaults\n    timeout connect 3s\n    timeout client 30s\n"
                      "    timeout server 30s\n\n" + out.config)
    check(haproxy_bin, config)
