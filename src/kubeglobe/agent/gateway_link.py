"""The agent's own HAProxy: it attaches to the hub's gateway and serves its requests.

This HAProxy dials the gateway's agent port and offers the connection as a server
(reverse HTTP, `rhttp@`); the gateway sends this cluster's requests down it, already
rewritten, and it sends each on to the apiserver with the agent's apiserver client
certificate, which may only impersonate. Python touches no request. The gateway uses
this path only while it sees the connections, so any failure here falls back to the
tunnel by itself. Where the gateway is several replicas (pods on the control-plane
nodes), it attaches to each, since each serves only the agents it holds; the hub lists
them (`/api/v1/agent/replicas`), and the one address of the grant stands in for none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from kubeglobe.agent.apiserver_certificate import ClientCertificate, due, new_request
from kubeglobe.api.meta import CLUSTER_HEADER, METHOD_HEADER, PLATFORM_TLS_NAME
from kubeglobe.failures import caught
from kubeglobe.files import write_atomic
from kubeglobe.haproxy import is_host_name, program_version, status_errors
from kubeglobe.kube.client import KUBE_ERRORS

log = logging.getLogger("kubeglobe.agent.gateway")
WINDOW = 1 << 20  # HTTP/2 flow-control window per stream: port-forward speed (see gateway)
CONNECTIONS = 2  # connections kept to the gateway; HTTP/2 multiplexes requests on each
CHECK_SECONDS = 5.0  # how often the link looks at its HAProxy and certificates
RETRY_SECONDS = 30.0
NO_PORT_SECONDS = 600.0  # a hub without an agent port: ask again this much later
STOP_SECONDS = 5.0
FORGET_SECONDS = 300.0  # a gateway replica the hub no longer lists is let go this late
HANDOVER_SECONDS = 2.0  # a new HAProxy attaches well within this; then the old goes
MIN_VERSION = (2, 9)  # reverse HTTP came with HAProxy 2.9
PROGRAM_PLACES = ("/usr/local/sbin/haproxy",)


class NoAgentPort(RuntimeError):
    """The hub's gateway takes no agent connections; its tunnels serve this cluster."""


class NotRegistered(RuntimeError):
    """The agent holds no credential yet, so it cannot ask for a certificate."""


# The hub away or not answering as it should, the cluster's API away (lightkube raises
# httpx2's errors), HAProxy not starting: the tunnels serve meanwhile; never stop the agent.
_RETRIED: tuple[type[Exception], ...] = (NotRegistered, httpx.HTTPError, *KUBE_ERRORS,
                                         KeyError, ValueError)


@dataclass(frozen=True)
class GatewayGrant:
    """What the hub gave: the certificate, where to attach and whom to trust there."""

    certificate: ClientCertificate
    address: str  # HOST:PORT
    ca_pem: bytes


@dataclass(frozen=True)
class Apiserver:
    """The agent's apiserver as its HAProxy reaches it."""

    host: str
    port: int
    ca_pem: bytes
    certificate: ClientCertificate


def find_haproxy() -> str | None:
    """An HAProxy program that has reverse HTTP (2.9 or later), or None."""
    for candidate in (*PROGRAM_PLACES, shutil.which("haproxy")):
        if candidate is None or not Path(candidate).is_file():
            continue
        version = program_version(candidate)
        if version is not None and version[:2] >= MIN_VERSION:
            return candidate
    return None


@dataclass
class GatewayReplicas:
    """The gateway's replicas the agent attaches to (HOST:PORT each): those the hub lists,
    and for FORGET_SECONDS those it listed before. A replica leaves the hub's list when
    its pod is not ready for a moment, while it may still send this cluster's requests
    down the connections it holds; dropping it at once would cut them under it."""

    last_listed: dict[str, float] = dataclasses.field(default_factory=dict)  # monotonic

    def update(self, listed: Iterable[str], now: float) -> None:
        for address in listed:
            self.last_listed[address] = now
        self.last_listed = {a: seen for a, seen in self.last_listed.items()
                            if now - seen < FORGET_SECONDS}

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted(self.last_listed))


def _server_tls(host: str, ca: Path, crt: Path, *, name: str | None = None) -> str:
    """TLS to `host`: verified against `ca` and checked for `name` (the host's own
    when it is a name)."""
    line = f"ssl crt {crt} ca-file {ca} verify required"
    name = name or (host if is_host_name(host) else None)
    if name is not None:
        line += f" sni str({name}) verifyhost {name}"
    return line


def render_config(*, directory: Path, cluster: str, gateways: tuple[str, ...],
                  apiserver: Apiserver, connections: int = CONNECTIONS) -> str:
    """HAProxy's configuration: attach to `gateway`, serve it from `apiserver`; its own
    errors are Kubernetes `Status` objects naming `cluster` (kubectl prints them)."""
    errors = "\n".join(status_errors({
        502: f"the apiserver of cluster {cluster} closed the connection to its agent "
             "without an answer",
        503: f"the apiserver of cluster {cluster} is not reachable from its agent",
        504: f"the apiserver of cluster {cluster} did not answer its agent in time"}))
    apiserver_host = f"[{apiserver.host}]" if ":" in apiserver.host else apiserver.host
    # the gateway's certificate is the platform's: a replica's address is in none
    hub_tls = _server_tls("", directory / "gateway-ca.pem", directory / "gateway-client.pem",
                          name=PLATFORM_TLS_NAME)
    binds = "".join(f"    bind rhttp@hub/gateway-{i} nbconn {connections}\n"
                    for i in range(len(gateways)))
    servers = "".join(f"    server gateway-{i} {address} {hub_tls} alpn h2\n"
                      for i, address in enumerate(gateways))
    api_tls = _server_tls(apiserver.host, directory / "apiserver-ca.pem",
                          directory / "apiserver-client.pem")
    return f"""# Written by the kubeglobe agent (agent/gateway_link.py); rewritten on change.
global
    expose-experimental-directives
    nbthread 1
    tune.h2.initial-window-size {WINDOW}
    tune.bufsize 262144
    log stderr format short local0 notice

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout http-keep-alive 2m

frontend gateway
{binds}    # HTTP/2 turned an upgrade (exec, port-forward) into a GET; the gateway sent its method
    acl upgrade_method req.hdr({METHOD_HEADER}) -m found
    http-request set-method %[req.hdr({METHOD_HEADER})] if upgrade_method
    http-request del-header {METHOD_HEADER}
    default_backend apiserver

backend hub
{servers}
backend apiserver
    http-reuse always
{errors}
    server apiserver {apiserver_host}:{apiserver.port} {api_tls} alpn http/1.1
"""


def link_files(*, directory: Path, cluster: str, grant: GatewayGrant, apiserver: Apiserver,
               gateways: tuple[str, ...] = ()) -> dict[Path, bytes]:
    """Every file the agent's HAProxy reads, by path; attached to each of `gateways`, or
    to the grant's one address without them."""
    def pair(c: ClientCertificate) -> bytes:
        return c.cert_pem.rstrip(b"\n") + b"\n" + c.key_pem

    return {
        directory / "gateway-client.pem": pair(grant.certificate),
        directory / "gateway-ca.pem": grant.ca_pem,
        directory / "apiserver-client.pem": pair(apiserver.certificate),
        directory / "apiserver-ca.pem": apiserver.ca_pem,
        directory / "haproxy.cfg": render_config(
            directory=directory, cluster=cluster, gateways=gateways or (grant.address,),
            apiserver=apiserver).encode(),
    }


async def request_grant(*, hub_url: str, hub_ca: ssl.SSLContext, cluster: str,
                        credential: str) -> GatewayGrant:
    """A gateway certificate for a fresh key, signed by the hub (NoAgentPort on 404)."""
    pending = new_request(cluster)
    async with httpx.AsyncClient(verify=hub_ca, trust_env=False, timeout=15) as http:
        r = await http.post(f"{hub_url}/api/v1/agent/gateway-certificate",
                            json={"csr": pending.csr_pem.decode()},
                            headers={"Authorization": f"Bearer {credential}",
                                     CLUSTER_HEADER: cluster})
    if r.status_code == 404:
        raise NoAgentPort(r.json().get("detail", r.text))
    r.raise_for_status()
    body = r.json()
    return GatewayGrant(
        certificate=ClientCertificate(cert_pem=body["certificate"].encode(),
                                      key_pem=pending.key_pem),
        address=str(body["gatewayAddress"]), ca_pem=str(body["gatewayCA"]).encode())


class HAProxyChild:
    """One HAProxy process started by this agent, replaced when its files change.

    A replacement is make-before-break: the new process attaches while the old one still
    holds its connections, and only then does the old one stop. The gateway sees a
    connection throughout, so a renewed certificate or a changed replica list never
    sends a request to no agent (a stream running on the old process ends with it)."""

    def __init__(self, program: str, directory: Path, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._program = program
        self._directory = directory
        self._sleep = sleep
        self._process: asyncio.subprocess.Process | None = None
        self._leaving: asyncio.subprocess.Process | None = None  # during a handover
        self._written: dict[Path, bytes] = {}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    async def ensure(self, files: dict[Path, bytes]) -> None:
        """Running with exactly `files` (replaced if they changed, started if it exited)."""
        if self.running and files == self._written:
            return
        old = self._process if self.running else None
        if self._process is not None and self._process.returncode is not None:
            log.warning("the agent's HAProxy exited with status %s; starting it again",
                        self._process.returncode)
        for path, content in files.items():  # a running HAProxy read its files at start
            write_atomic(path, content)
        self._written = dict(files)
        self._process = await asyncio.create_subprocess_exec(
            self._program, "-db", "-f", str(self._directory / "haproxy.cfg"),
            stdin=asyncio.subprocess.DEVNULL)
        log.info("the agent's HAProxy (pid %s) attaches to the gateway", self._process.pid)
        if old is None:
            return
        self._leaving = old  # stop() stops it too, should this be cancelled meanwhile
        await self._sleep(HANDOVER_SECONDS)
        self._leaving = None
        if not self.running:  # the new one refused its files: the old one serves on
            log.warning("the agent's new HAProxy exited with status %s; pid %s serves on",
                        self._process.returncode, old.pid)
            self._process, self._written = old, {}  # the next round tries again
            return
        await _stop(old)

    async def stop(self) -> None:
        processes = (self._process, self._leaving)
        self._process = self._leaving = None
        for process in processes:
            if process is not None:
                await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


@dataclass(eq=False, kw_only=True)
class GatewayLink:
    program: str
    cluster: str
    grant: Callable[[], Awaitable[GatewayGrant]]  # asks the hub (`request_grant`)
    apiserver: Callable[[], Apiserver | None]  # None until the agent holds its certificate
    gateways: GatewayReplicas = dataclasses.field(default_factory=GatewayReplicas)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def keep(self) -> None:
        """Keep the HAProxy attached for as long as the agent runs."""
        directory = Path(tempfile.mkdtemp(prefix="kubeglobe-gateway-link-"))  # 0700
        child = HAProxyChild(self.program, directory, sleep=self.sleep)
        grant: GatewayGrant | None = None
        try:
            while True:
                wait = CHECK_SECONDS
                try:
                    apiserver = self.apiserver()
                    if apiserver is None:
                        await child.stop()  # no certificate for the apiserver (yet)
                    else:
                        if grant is None or due(grant.certificate, self.clock()):
                            grant = await self.grant()
                        await child.ensure(link_files(
                            directory=directory, cluster=self.cluster, grant=grant,
                            apiserver=apiserver, gateways=self.gateways.addresses))
                except NoAgentPort as e:
                    log.info("not attaching to the gateway: %s", e)
                    wait = NO_PORT_SECONDS
                except _RETRIED as e:
                    caught(log, component="agent", operation="gateway link", error=e)
                    wait = RETRY_SECONDS
                await self.sleep(wait)
        finally:
            await child.stop()
            with contextlib.suppress(OSError):
                shutil.rmtree(directory)
