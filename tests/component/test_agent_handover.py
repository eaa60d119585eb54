"""The agent's HAProxy is replaced make-before-break (agent/gateway_link.py HAProxyChild).

Three real HAProxy processes on loopback: the gateway's reverse side as the gateway
renders it (gateway/reverse.py) plus a plain frontend for the test's requests, the
agent's as the agent renders and runs it, and a stand-in apiserver (TLS, a client
certificate asked for, a fixed answer). Requests go on, one after another, while the
agent's files change (a renewed certificate): none may find the cluster without an agent.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from kubeglobe.agent.apiserver_certificate import ClientCertificate
from kubeglobe.agent.gateway_link import Apiserver, GatewayGrant, HAProxyChild, link_files
from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.certfiles import CertPair, Issuer, ensure_ca, ensure_cert
from kubeglobe.gateway.reverse import AgentPort, ServersPort, render_reverse, reverse_backend
from kubeglobe.local.health import probe_tcp, wait_until
from tests.component.conftest import free_port

UID = "4b7d2e10-9c3a-4f5e-8d6b-1a2c3e4f5a6b"
ANSWER = "served by the apiserver"



def _pem(pair: CertPair, out: Path) -> Path:
    out.write_bytes(pair.cert.read_bytes() + pair.key.read_bytes())
    return out


def _client(ca: Issuer, directory: Path, name: str) -> ClientCertificate:
    pair = ensure_cert(issuer=ca, pair=CertPair(cert=directory / f"{name}.crt",
                                                key=directory / f"{name}.key"),
                       common_name="kubeglobe-agent", organizations=(UID,), client=True)
    return ClientCertificate(cert_pem=pair.cert.read_bytes(), key_pem=pair.key.read_bytes())


@dataclass
class Hub:
    """The gateway and apiserver stand-ins, and what the agent needs to attach."""

    clients_port: int
    grant: GatewayGrant
    apiserver: Apiserver
    ca: Issuer
    directory: Path

    def get(self) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.clients_port, timeout=10)
        try:
            conn.request("GET", "/clusters/w2/k8s/version")
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:  # a request lost: a failure too
            return 0, f"{type(e).__name__}: {e}"
        finally:
            conn.close()


def _start(haproxy: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(haproxy), "-db", "-f", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    wait_until(f"HAProxy ({config.name})", partial(probe_tcp, "127.0.0.1", port), timeout=10,
               alive=lambda: proc.poll() is None, log=str(log), interval=0.05)
    return proc


@pytest.fixture
def hub(tmp_path: Path, haproxy_bin: Path) -> Iterator[Hub]:
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="handover")
    gateway = ensure_cert(issuer=ca, pair=CertPair(cert=tmp_path / "gw.crt",
                                                   key=tmp_path / "gw.key"),
                          common_name="gateway", dns_names=(PLATFORM_TLS_NAME,), server=True)
    api = ensure_cert(issuer=ca, pair=CertPair(cert=tmp_path / "api.crt",
                                               key=tmp_path / "api.key"),
                      common_name="apiserver", ip_addresses=("127.0.0.1",), server=True)
    gateway_pem, api_pem = _pem(gateway, tmp_path / "gw.pem"), _pem(api, tmp_path / "api.pem")
    agents_port, servers_port, clients_port, api_port = (free_port() for _ in range(4))
    backend = reverse_backend("w2", UID)
    assert backend is not None
    reverse = render_reverse(
        AgentPort(bind=f"127.0.0.1:{agents_port}", serving_pem=gateway_pem,
                  agents_ca=ca.pair.cert),
        [backend],
        ServersPort(bind=f"127.0.0.1:{servers_port}", serving_pem=gateway_pem,
                    servers_ca=ca.pair.cert))
    (tmp_path / "gateway.cfg").write_text(f"""global
    expose-experimental-directives

defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s

frontend clients
    bind 127.0.0.1:{clients_port}
    default_backend {backend.name}

{reverse}""")
    (tmp_path / "apiserver.cfg").write_text(f"""defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s

frontend apiserver
    bind 127.0.0.1:{api_port} ssl crt {api_pem} ca-file {ca.pair.cert} verify required
    http-request return status 200 content-type text/plain string "{ANSWER}"
""")
    started = []
    try:
        started.append(_start(haproxy_bin, tmp_path / "apiserver.cfg", api_port,
                              tmp_path / "apiserver.log"))
        started.append(_start(haproxy_bin, tmp_path / "gateway.cfg", clients_port,
                              tmp_path / "gateway.log"))
        ca_pem = ca.pair.cert.read_bytes()
        yield Hub(clients_port=clients_port, ca=ca, directory=tmp_path,
                  grant=GatewayGrant(certificate=_client(ca, tmp_path, "agent-1"),
                                     address=f"127.0.0.1:{agents_port}", ca_pem=ca_pem),
                  apiserver=Apiserver(host="127.0.0.1", port=api_port, ca_pem=ca_pem,
                                      certificate=_client(ca, tmp_path, "agent-api")))
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_changed_agent_haproxy_hands_over_without_a_request_finding_no_agent(
        hub: Hub, tmp_path: Path, haproxy_bin: Path) -> None:
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()

    def files(grant: GatewayGrant) -> dict[Path, bytes]:
        return link_files(directory=agent_dir, cluster="w2", grant=grant,
                          apiserver=hub.apiserver)

    async def scenario() -> tuple[list[tuple[int, str]], int | None, int | None]:
        child = HAProxyChild(str(haproxy_bin), agent_dir)
        try:
            await child.ensure(files(hub.grant))
            deadline = time.monotonic() + 15
            while (await asyncio.to_thread(hub.get))[0] != 200:
                assert time.monotonic() < deadline, "the agent never attached"
                await asyncio.sleep(0.1)
            first = child.pid
            assert first is not None
            answers: list[tuple[int, str]] = []
            stop = threading.Event()

            def load() -> None:  # bounded: it stops with the handover, or after 30 s
                end = time.monotonic() + 30
                while not stop.is_set() and time.monotonic() < end:
                    answers.append(hub.get())

            loader = threading.Thread(target=load)
            loader.start()
            await asyncio.sleep(0.5)
            renewed = GatewayGrant(certificate=_client(hub.ca, hub.directory, "agent-2"),
                                   address=hub.grant.address, ca_pem=hub.grant.ca_pem)
            await child.ensure(files(renewed))
            during = child.pid
            assert not _alive(first), "the old HAProxy still runs after the handover"
            await asyncio.sleep(1.0)  # requests go on over the new one alone
            stop.set()
            await asyncio.to_thread(loader.join, 35)
            await child.ensure(files(renewed))  # the same files: nothing is replaced
            assert child.pid == during
            return answers, first, during
        finally:
            await child.stop()
            assert child.pid is None

    answers, first, during = asyncio.run(scenario())
    refused = [a for a in answers if a[0] != 200]
    assert len(answers) > 20, f"only {len(answers)} requests went during the handover"
    assert not refused, f"{len(refused)} of {len(answers)} requests failed: {refused[:3]}"
    assert all(ANSWER in body for _, body in answers)
    assert during is not None and during != first, (first, during)
    assert not _alive(during), "stop() left the agent's HAProxy running"
