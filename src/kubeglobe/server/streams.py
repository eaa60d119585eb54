"""Upgraded cluster-proxy requests (exec, attach, port-forward, cp) as the calling user.

`server/upgrade.py` hands over the caller's raw connection after the request head; the
request goes on with the impersonation of every proxied request, along the hops the
route table gives (`kubeglobe/routing.py`): the apiserver itself (import mode), else the
agent's own connections at the gateway while it has them, else a tunnel stream to the
agent. After `101 Switching Protocols` bytes are piped both ways; anything refused
before is answered as a Kubernetes `Status` (kubectl prints it), never by dropping the
connection.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from kubeglobe.api.cluster import ClusterSpec
from kubeglobe.api.meta import DETACHED_HEADER
from kubeglobe.failures import caught, count
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.http1 import (
    ResponseHead,
    StreamRoute,
    apiserver_head,
    final_response,
    status_response,
    upgrade_token,
)
from kubeglobe.kube.pipe import End, SocketEnd, splice
from kubeglobe.kube.spdy import SpdyWatch
from kubeglobe.kube.status import bearer_token
from kubeglobe.kube.upgrade import Answer, DialError, Endpoint, dial, target_endpoint
from kubeglobe.routing import Hop, server_hops, verb_of
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.proxy import ClusterProxy, forward_headers
from kubeglobe.server.tunnels import TunnelHub, no_tunnel
from kubeglobe.tunnel.mux import Multiplexer, Stream, StreamClosed
from kubeglobe.tunnel.pipe import StreamEnd

log = logging.getLogger("kubeglobe.streams")
GATEWAY_CONNECT_SECONDS = 2.0


class Refused(Exception):
    """The stream cannot start; answered to the caller as a Status with this code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Incoming:
    """The caller's upgrade request as it arrived."""

    method: str
    headers: list[tuple[str, str]]
    route: StreamRoute


class StreamProxy:
    def __init__(self, *, authenticate: TokenAuthenticator, proxy: ClusterProxy,
                 access: ClusterAccess, tunnels: TunnelHub,
                 agents_gateway: Endpoint | None = None) -> None:
        self._authenticate = authenticate
        self._agents_gateway = agents_gateway  # the gateway's port for the servers
        self._proxy = proxy
        self._access = access
        self._tunnels = tunnels

    async def serve(self, incoming: Incoming, caller: SocketEnd) -> None:
        cluster = incoming.route.cluster
        try:
            far = await self._open(incoming)
        except Refused as e:
            log.info("stream to cluster %s refused: %s", cluster, e)
            await _answer(caller, status_response(e.code, str(e)))
            return
        except Exception as e:  # a bug: still never leave the caller without an answer
            log.exception("stream to cluster %s failed", cluster)
            count(component="server", operation="stream", error=e)
            await _answer(caller, status_response(500, f"stream failed: {e}"))
            return
        if isinstance(far, bytes):  # a final answer from the far side, relayed whole
            await _answer(caller, far)
            return
        try:
            await caller.write(far.head.encode())
        except (ConnectionError, OSError):
            await far.pipe.close("caller went away")
            await caller.close("caller went away")
            return
        watched = WatchedCaller(caller, SpdyWatch(
            protocol=far.head.header("x-stream-protocol-version") or ""), lost=far.lost)
        error = await splice(watched, far.pipe)
        log.debug("stream to cluster %s ended%s", cluster, f": {error}" if error else "")

    async def _open(self, incoming: Incoming) -> bytes | Upgraded:
        token = bearer_token(incoming.headers)
        if token is None:
            raise Refused(401, "no bearer token; pass `Authorization: Bearer <token>`")
        cluster = incoming.route.cluster
        try:
            identity = await self._authenticate.identify(token)
            spec = await self._proxy.spec(cluster)
        except HTTPException as e:
            raise Refused(e.status_code, str(e.detail)) from e
        upgrade = upgrade_token(incoming.headers) or ""
        forwarded = forward_headers(incoming.headers, identity)
        verb = verb_of(upgrade=True, path=incoming.route.target.partition("?")[0])
        for hop in server_hops(mode=spec.mode, verb=verb):
            if hop is Hop.APISERVER:
                return await self._to_apiserver(incoming, forwarded, upgrade, spec)
            if hop is Hop.AGENT and self._agents_gateway is not None:
                attached = await _through_gateway(self._agents_gateway, cluster, incoming,
                                                  forwarded, upgrade)
                if attached is not None:
                    return attached
            elif hop is Hop.TUNNEL:
                mux = self._tunnels.local(cluster)
                if mux is not None:
                    return await _through_tunnel(mux, cluster, incoming, forwarded, upgrade)
        raise Refused(503, no_tunnel(cluster))

    async def _to_apiserver(self, incoming: Incoming, forwarded: list[tuple[str, str]],
                            upgrade: str, spec: ClusterSpec) -> bytes | Upgraded:
        cluster = incoming.route.cluster
        try:
            where = target_endpoint((await self._access.recent_client(name=cluster,
                                                                      spec=spec)).target)
        except (ClusterUnreachable, KubeconfigError) as e:
            raise Refused(503, f"cluster {cluster} is not reachable: {e}") from e
        head = apiserver_head(method=incoming.method, target=incoming.route.target,
                              base_path=where.base_path, host=where.authority,
                              upgrade=upgrade, forwarded=forwarded,
                              credentials=where.credentials)
        try:
            return _relayable(await dial(where, head),
                              lost=f"lost the connection to cluster {cluster}'s apiserver")
        except DialError as e:
            raise Refused(502, f"cluster {cluster} did not answer: {e}") from e


@dataclass(frozen=True)
class Upgraded:
    head: ResponseHead  # the far side's 101 answer
    pipe: End
    lost: str  # what the caller is told if the far side breaks mid-stream


class WatchedCaller:
    """The caller's connection, its SPDY followed: if the far side breaks mid-stream,
    kubectl is told why on its error stream before the connection closes."""

    def __init__(self, caller: SocketEnd, watch: SpdyWatch, *, lost: str) -> None:
        self._caller = caller
        self._watch = watch
        self._lost = lost
        self._told = False

    async def read(self) -> bytes | None:
        data = await self._caller.read()
        if data is not None:
            self._watch.from_client(data)
        return data

    async def write(self, data: bytes) -> None:
        self._watch.from_server(data)
        await self._caller.write(data)

    def put(self, data: bytes) -> None:
        self._watch.from_server(data)
        self._caller.put(data)

    async def drain(self) -> None:
        await self._caller.drain()

    async def _tell(self, why: str) -> None:
        """Fail the command on its error stream, once, if that stream is still open."""
        frames = b"" if self._told else self._watch.broken(f"{self._lost} ({why})")
        if frames:
            self._told = True
            with contextlib.suppress(ConnectionError, OSError):
                await self._caller.write(frames)

    async def end(self) -> bool:
        # The far side stopped sending. Having said how the command ended, it closed its
        # error stream first; if not, it just went away (HAProxy, when the agent's
        # connection is gone, closes as politely as a finished command would).
        await self._tell("closed mid-stream")
        return await self._caller.end()

    async def close(self, error: str | None) -> None:
        if error:
            await self._tell(error)
            if self._told:
                error = None  # an orderly close, so kubectl reads the Status first
        await self._caller.close(error)


def _relayable(answer: Answer, *, lost: str) -> bytes | Upgraded:
    if answer.pipe is None:
        return final_response(answer.head, answer.body)
    return Upgraded(head=answer.head, pipe=answer.pipe, lost=lost)


async def _through_gateway(gateway: Endpoint, cluster: str, incoming: Incoming,
                           forwarded: list[tuple[str, str]],
                           upgrade: str) -> bytes | Upgraded | None:
    """The stream down the agent's own connections to the gateway; None when the agent
    is not attached there (or the gateway is away): the tunnel serves then."""
    head = apiserver_head(method=incoming.method, target=incoming.route.target,
                          base_path=f"/clusters/{cluster}/k8s", host=gateway.authority,
                          upgrade=upgrade, forwarded=forwarded, credentials={})
    try:
        # the gateway is next to us: if it does not take the connection soon, the tunnel
        answer = await dial(gateway, head, connect_seconds=GATEWAY_CONNECT_SECONDS)
    except DialError as e:
        caught(log, component="server", operation="stream through the gateway", error=e,
               level=logging.INFO)
        return None
    if answer.pipe is None and answer.head.header(DETACHED_HEADER) is not None:
        return None
    return _relayable(answer, lost=f"lost the stream to cluster {cluster} through its agent")


async def _through_tunnel(mux: Multiplexer, cluster: str, incoming: Incoming,
                          forwarded: list[tuple[str, str]],
                          upgrade: str) -> bytes | Upgraded:
    path, _, query = incoming.route.target.partition("?")
    meta: dict[str, Any] = {"method": incoming.method, "path": path, "query": query,
                            "headers": forwarded, "body": False, "upgrade": upgrade}
    stream: Stream | None = None
    try:
        stream = await mux.open(meta)
        got = await stream.head()
        head = ResponseHead(status=int(got["status"]), reason=str(got.get("reason", "")),
                            headers=tuple((str(k), str(v)) for k, v in got["headers"]))
        if head.upgraded:
            return Upgraded(head=head, pipe=StreamEnd(stream),
                            lost=f"lost the stream to cluster {cluster} through its agent")
        body = b"".join([chunk async for chunk in stream.chunks()])
        await stream.reset("answer read")
        return final_response(head, body)
    except StreamClosed as e:
        if stream is not None:
            mux.forget(stream.id)
        raise Refused(502, f"tunnel to cluster {cluster} failed: {e}") from e


async def _answer(caller: SocketEnd, response: bytes) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        await caller.write(response)
    await caller.close(None)
