"""A gateway replica's base HAProxy configuration and the files it starts with."""

from __future__ import annotations

from pathlib import Path

from kubeglobe.gateway.config import render_gateway_config, seed
from kubeglobe.gateway.frontend import GatewayFiles


def test_the_platform_frontend_ends_tls_and_sends_the_rest_to_the_servers() -> None:
    files = GatewayFiles(Path("/run/gw"))
    text = render_gateway_config(files=files, platform_bind=":20216",
                                 serving_pem="/etc/kubeglobe/tls/tls.crt")
    assert "    bind :20216 ssl crt /etc/kubeglobe/tls/tls.crt alpn http/1.1\n" in text
    assert "    ssl-load-extra-del-ext\n" in text  # tls.crt finds tls.key
    assert "    stats socket /run/gw/admin.sock mode 600 level admin\n" in text
    assert "use_backend %[var(txn.kg_backend)] if kg_fast kg_imported" in text
    assert "map_str(/run/gw/identities.map)" in text
    assert "    default_backend platform-servers\n" in text
    assert "option idle-close-on-response" in text  # reloads lose no keep-alive request
    assert "tune.bufsize 262144" in text  # HTTP/2 to agents: port-forward speed
    assert "\nbackend " not in text  # every backend is the sync's (gateway.cfg)


def test_a_replica_starts_with_empty_maps_and_no_server_whatever_was_there(
        tmp_path: Path) -> None:
    files = GatewayFiles(tmp_path / "gw")
    ca = tmp_path / "ca.crt"
    files.directory.mkdir()
    files.identities.write_text("digest 0|mallory|admins\n")  # left by an earlier pod
    files.backends.write_text("backend kg-cluster-old\n")
    seed(files, base_config="global\n", replicas_ca=ca)
    seed(files, base_config="global\n", replicas_ca=ca)  # again: the same
    assert files.base.read_text() == "global\n"
    assert files.identities.read_text() == "" and files.clusters.read_text() == ""
    backends = files.backends.read_text()
    assert backends.startswith("backend platform-servers\n") and "    server " not in backends
    assert files.certs.is_dir()


def test_a_directory_too_long_for_haproxys_sockets_is_refused_by_name(tmp_path: Path) -> None:
    files = GatewayFiles(tmp_path / ("d" * 100))
    try:
        seed(files, base_config="", replicas_ca=tmp_path / "ca.crt")
    except ValueError as e:
        assert "shorter --dir" in str(e) and "admin.sock" in str(e)
    else:
        raise AssertionError("a socket path HAProxy cannot bind was accepted")
    assert not files.directory.exists()  # nothing half-written
