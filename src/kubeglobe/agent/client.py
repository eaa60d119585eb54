"""The agent's life: trade the bootstrap token for a credential, then hold the tunnels.

One tunnel to every API server replica of the hub, so each reaches the cluster without
another hop. Any failure leads to a reconnect after a jittered backoff. A credential
the hub refuses is dropped; the agent registers again only with an unused bootstrap
token, and otherwise keeps trying (an admin can issue a new token).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, replace
from typing import Protocol

import httpx
import websockets
from lightkube import AsyncClient
from websockets.asyncio.client import ClientConnection

from kubeglobe import __version__
from kubeglobe.agent.apiserver_certificate import obtain
from kubeglobe.agent.apiserver_http import ApiserverHttp
from kubeglobe.agent.certificate_keeper import CertificateKeeper, CertificateStore
from kubeglobe.agent.forwarder import Forwarder
from kubeglobe.agent.gateway_link import (
    GatewayGrant,
    GatewayLink,
    GatewayReplicas,
    NotRegistered,
    find_haproxy,
    request_grant,
)
from kubeglobe.api.meta import CLUSTER_HEADER, PLATFORM_TLS_NAME
from kubeglobe.backoff import Backoff
from kubeglobe.failures import caught, count
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.rest import RestTarget
from kubeglobe.kube.upgrade import target_endpoint
from kubeglobe.tunnel.mux import Multiplexer

log = logging.getLogger("kubeglobe.agent")
MAX_BACKOFF = 30.0
REPLICAS_EVERY = 30.0  # how often the agent re-reads the hub's replica list
STABLE_AFTER = 30.0


class CredentialStore(CertificateStore, Protocol):
    async def load(self) -> tuple[str | None, str | None]:
        """(bootstrap token, agent credential), either may be missing."""

    async def save_credential(self, credential: str | None) -> None: ...


@dataclass(frozen=True)
class AgentSettings:
    hub_url: str  # the platform API, https://...
    hub_ca: ssl.SSLContext
    cluster: str


class RegistrationRefused(RuntimeError):
    pass


# What reaching the hub may raise; the loops retry after any of them.
_UNREACHABLE: tuple[type[Exception], ...] = (
    httpx.HTTPError, websockets.WebSocketException, TimeoutError, *KUBE_ERRORS)
# and a replica list that is not the list it should be
_UNLISTED: tuple[type[Exception], ...] = (*_UNREACHABLE, ValueError, KeyError, TypeError)


async def register(settings: AgentSettings, bootstrap_token: str) -> str:
    async with httpx.AsyncClient(verify=settings.hub_ca, trust_env=False, timeout=15) as http:
        r = await http.post(f"{settings.hub_url}/api/v1/agent/register", json={
            "cluster": settings.cluster, "bootstrapToken": bootstrap_token,
            "agentVersion": __version__})
    if r.status_code in (400, 401, 403, 404, 409, 410, 422):
        raise RegistrationRefused(r.json().get("detail", r.text))
    r.raise_for_status()
    credential: str = r.json()["credential"]
    return credential


class WebSocketTransport:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        await self._ws.send(data)

    async def recv(self) -> bytes:
        message = await self._ws.recv()
        return message if isinstance(message, bytes) else message.encode()


def tunnel_url(hub_url: str) -> str:
    return hub_url.replace("https://", "wss://", 1).rstrip("/") + "/api/v1/agent/tunnel"


async def hold_tunnel(settings: AgentSettings, credential: str,
                      forwarder: Forwarder, *, tls_name: str | None = None) -> None:
    """Connect and serve until the tunnel ends (raises on connect failure). `tls_name`:
    the name the server's certificate must carry, when it is not the URL's host."""
    async with websockets.connect(
        tunnel_url(settings.hub_url), ssl=settings.hub_ca, max_size=None,
        server_hostname=tls_name or httpx.URL(settings.hub_url).host,
        additional_headers={"Authorization": f"Bearer {credential}",
                            CLUSTER_HEADER: settings.cluster,
                            "X-KubeGlobe-Agent-Version": __version__},
        ping_interval=10, ping_timeout=20, open_timeout=10,
        compression=None,  # frames carry TLS-encrypted or already-compressed bytes mostly;
        # deflating them cost most of the tunnel's throughput (port-forward 22 MiB/s)
    ) as ws:
        log.info("tunnel to %s open for cluster %s", settings.hub_url, settings.cluster)
        await Multiplexer(WebSocketTransport(ws), on_open=forwarder, first_id=2).run()


class CredentialRefused(RuntimeError):
    pass


async def fetch_replicas(settings: AgentSettings, credential: str,
                         gateways: GatewayReplicas) -> list[str]:
    """The hub's live API server replicas (their own URLs); `gateways` is set to its
    gateway replicas."""
    async with httpx.AsyncClient(verify=settings.hub_ca, trust_env=False, timeout=10) as http:
        r = await http.get(f"{settings.hub_url}/api/v1/agent/replicas", headers={
            "Authorization": f"Bearer {credential}", CLUSTER_HEADER: settings.cluster})
    if r.status_code in (401, 403):
        raise CredentialRefused(r.text)
    r.raise_for_status()
    body = r.json()
    gateways.update((str(a) for a in body.get("gateways") or ()), time.monotonic())
    return [str(u) for u in body["replicas"]]


async def keep_tunnel(settings: AgentSettings, url: str, credential: str,
                      forwarder: Forwarder) -> None:
    """Hold a tunnel to one replica, reconnecting with a jittered backoff; ends only
    when the hub refuses the credential (CredentialRefused)."""
    backoff = Backoff(most=MAX_BACKOFF, stable_after=STABLE_AFTER)
    while True:
        backoff.attempt()
        try:
            # A replica is dialled at its own address (a pod's, which no certificate
            # names): its certificate is checked for the platform servers' name.
            await hold_tunnel(replace(settings, hub_url=url), credential, forwarder,
                              tls_name=None if url == settings.hub_url else PLATFORM_TLS_NAME)
            log.warning("tunnel to %s closed; reconnecting", url)
        except websockets.InvalidStatus as e:
            if e.response.status_code in (401, 403):
                raise CredentialRefused(f"{url} answered HTTP {e.response.status_code}") from e
            count(component="agent", operation="tunnel", error=e)
            log.warning("%s answered HTTP %s; retrying", url, e.response.status_code)
        except _UNREACHABLE as e:
            count(component="agent", operation="tunnel", error=e)
            log.warning("%s unreachable (%s: %s); retrying", url, type(e).__name__, e)
        await backoff.wait()


async def serve_replicas(settings: AgentSettings, credential: str,
                         forwarder: Forwarder, gateways: GatewayReplicas) -> None:
    """Keep one tunnel to every live replica (the public URL while none is known),
    following the list as replicas come and go. Raises CredentialRefused."""
    tunnels: dict[str, asyncio.Task[None]] = {}
    try:
        while True:
            try:
                urls = (await fetch_replicas(settings, credential, gateways)
                        or [settings.hub_url])
            except _UNLISTED as e:
                caught(log, component="agent", operation="list the hub's replicas", error=e)
                urls = list(tunnels) or [settings.hub_url]
            for task in [t for t in tunnels.values() if t.done()]:
                task.result()  # CredentialRefused ends them all; re-raised here
            for url in urls:
                if url not in tunnels:
                    tunnels[url] = asyncio.create_task(
                        keep_tunnel(settings, url, credential, forwarder))
            for url in [u for u in tunnels if u not in urls]:
                tunnels.pop(url).cancel()
            await asyncio.wait(tunnels.values(), timeout=REPLICAS_EVERY,
                               return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tunnels.values():
            task.cancel()
        await asyncio.gather(*tunnels.values(), return_exceptions=True)


async def run_agent(*, settings: AgentSettings, store: CredentialStore,
                    target: RestTarget, client: AsyncClient, ca_pem: bytes | None) -> None:
    """Serve the hub's requests against the apiserver `target` until cancelled; `client`
    (the same apiserver, through lightkube) obtains the certificate for its HAProxy."""
    http = ApiserverHttp(target_endpoint(target))
    keeper = CertificateKeeper(issue=lambda: obtain(client, settings.cluster), store=store,
                               apiserver=target_endpoint(target), ca_pem=ca_pem)
    certificate = asyncio.create_task(keeper.keep())
    certificate.add_done_callback(_said_if_failed)
    gateways = GatewayReplicas()
    link = _gateway_link(settings, store, keeper, gateways)
    try:
        await _register_and_serve(settings, store, Forwarder(http, target), gateways)
    finally:
        certificate.cancel()
        if link is not None:
            link.cancel()
            await asyncio.gather(link, return_exceptions=True)  # stops the agent's HAProxy
        await http.aclose()


def _gateway_link(settings: AgentSettings, store: CredentialStore, keeper: CertificateKeeper,
                  gateways: GatewayReplicas) -> asyncio.Task[None] | None:
    """The agent's HAProxy serving the gateway (reverse HTTP), where HAProxy can."""
    program = find_haproxy()
    if program is None:
        log.info("no HAProxy 2.9+ here: the tunnels alone serve the hub")
        return None

    async def grant() -> GatewayGrant:
        _, credential = await store.load()
        if credential is None:
            raise NotRegistered("the agent is not registered yet")
        return await request_grant(hub_url=settings.hub_url, hub_ca=settings.hub_ca,
                                   cluster=settings.cluster, credential=credential)

    link = GatewayLink(program=program, cluster=settings.cluster, grant=grant,
                       apiserver=keeper.for_gateway_link, gateways=gateways)
    task = asyncio.create_task(link.keep())
    task.add_done_callback(_said_if_failed)
    return task


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """A background loop of the agent that ended on a bug: said at once, loudly (the
    tunnels go on serving without it)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the agent's background task %s stopped", task.get_name(),
                  exc_info=task.exception())


async def _register_and_serve(settings: AgentSettings, store: CredentialStore,
                              forwarder: Forwarder, gateways: GatewayReplicas) -> None:
    backoff = Backoff(most=MAX_BACKOFF, stable_after=STABLE_AFTER)
    while True:
        backoff.attempt()
        try:
            bootstrap, credential = await store.load()
            if credential is None:
                if bootstrap is None:
                    raise RegistrationRefused("no credential and no bootstrap token; issue a "
                                              "new one with `kubeglobe cluster register`")
                credential = await register(settings, bootstrap)
                await store.save_credential(credential)
                log.info("registered cluster %s with the hub", settings.cluster)
            await serve_replicas(settings, credential, forwarder, gateways)
        except CredentialRefused as e:
            log.warning("hub refused the agent credential (%s); dropping it", e)
            await store.save_credential(None)
        except RegistrationRefused as e:
            caught(log, component="agent", operation="register", error=e)
        except _UNREACHABLE as e:
            caught(log, component="agent", operation="reach the hub", error=e)
        await backoff.wait()
