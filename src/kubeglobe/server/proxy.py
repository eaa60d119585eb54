"""The cluster proxy: any Kubernetes API request, forwarded as the platform user.

The caller's credentials are replaced by the hub's and its identity passed as
impersonation headers, so the workload cluster's own RBAC decides what the user may do.
Bodies are streamed both ways, so watches and `logs -f` flow as they happen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

import httpx2
from fastapi import HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from kubeglobe.api.cluster import ClusterSpec
from kubeglobe.api.names import name_problem
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.kube.ttl import TtlCache
from kubeglobe.routing import Hop, Verb, server_hops

if TYPE_CHECKING:
    from kubeglobe.server.tunnels import TunnelHub

# Never forwarded: the caller's credentials, identity claims and hop-by-hop headers.
_DROP_REQUEST = {"authorization", "host", "connection", "keep-alive", "transfer-encoding",
                 "upgrade", "proxy-authorization", "te", "trailer", "content-length"}
BUFFER_LIMIT = 1 << 20
CACHE_SECONDS = 1.0  # how stale a Cluster's spec may be on the proxy's hot path
# `date` too: uvicorn stamps its own, and a response carries one Date.
_DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "date"}


def relayed_headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The far side's response headers the caller gets, in order, repeats included."""
    return [(k, v) for k, v in pairs if k.lower() not in _DROP_RESPONSE]


def is_small(headers: list[tuple[str, str]]) -> bool:
    """A response with a known, small length is relayed whole (cheaper than streaming);
    watches and followed logs have no length and are always streamed."""
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    return length is not None and length.isdigit() and int(length) <= BUFFER_LIMIT


def relay(status: int, headers: list[tuple[str, str]], body: bytes | AsyncIterator[bytes],
          background: BackgroundTask | None = None) -> Response:
    """The far side's answer as the caller's response, every header kept (a dict would
    keep one of several `Warning` headers) and winning over Starlette's own: a HEAD
    answer keeps its Content-Length. `body` is the far side's bytes as sent (still
    compressed if they were)."""
    if isinstance(body, bytes):
        response: Response = Response(body, status_code=status, background=background)
    else:
        response = StreamingResponse(body, status_code=status, background=background)
    theirs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    names = {name for name, _ in theirs}
    response.raw_headers = [(n, v) for n, v in response.raw_headers if n not in names] + theirs
    return response


def forward_headers(incoming: list[tuple[str, str]], identity: Identity) -> list[tuple[str, str]]:
    """The headers sent to the cluster (pure): caller's minus credentials, plus identity."""
    kept = [(k, v) for k, v in incoming
            if k.lower() not in _DROP_REQUEST and not k.lower().startswith("impersonate-")]
    kept.append(("Impersonate-User", identity.user))
    kept += [("Impersonate-Group", g) for g in identity.groups]
    return kept


class ClusterProxy:
    """Import mode: dial the cluster directly. Register mode: through its agent's tunnel."""

    def __init__(self, *, access: ClusterAccess, tunnels: TunnelHub) -> None:
        self._access = access
        self._tunnels = tunnels
        self._specs: TtlCache[str, ClusterSpec] = TtlCache(CACHE_SECONDS)

    async def spec(self, name: str) -> ClusterSpec:
        """The Cluster's spec (re-read at most once a second); HTTPException 422 (a name
        no Cluster can have), 404, 503."""
        problem = name_problem(name, rule="label", what="cluster name")
        if problem is not None:
            raise HTTPException(422, detail=problem)
        return await self._specs.get(name, lambda: self._read_spec(name))

    async def _read_spec(self, name: str) -> ClusterSpec:
        cluster = await missing_ok(self._access.hub.get(ClusterCR, name))
        if cluster is None:
            raise HTTPException(404, detail=f"cluster {name} not found")
        try:
            return ClusterSpec.model_validate(cluster.get("spec") or {})
        except ValidationError as e:
            raise HTTPException(503, detail=f"cluster {name} has an invalid spec: {e}") from e

    async def forward(self, *, name: str, path: str, request: Request,
                      identity: Identity) -> Response:
        spec = await self.spec(name)
        hops = server_hops(mode=spec.mode, verb=Verb.PLAIN)
        if Hop.TUNNEL in hops:  # plain requests take the agent's connections at the gateway
            return await self._tunnels.forward(cluster=name, path=path, request=request,
                                               identity=identity)
        assert hops == (Hop.APISERVER,), hops
        try:
            client = (await self._access.recent_client(name=name, spec=spec)).plain
        except (ClusterUnreachable, KubeconfigError) as e:
            raise HTTPException(503, detail=f"cluster {name} is not reachable: {e}") from e
        outgoing = client.build_request(
            request.method, httpx2.URL(path="/" + path, query=request.url.query.encode()),
            headers=forward_headers(request.headers.items(), identity),
            content=request.stream(), timeout=None,  # watches and `logs -f` last
        )
        try:
            upstream = await client.send(outgoing, stream=True)
        except httpx2.HTTPError as e:
            raise HTTPException(502, detail=f"cluster {name} did not answer: {e}") from e
        headers = relayed_headers(upstream.headers.multi_items())
        if is_small(headers):
            try:  # raw: a gzip body stays gzip, as its headers say
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])
            finally:
                await upstream.aclose()
            return relay(upstream.status_code, headers, body)
        return relay(upstream.status_code, headers, upstream.aiter_raw(),
                     BackgroundTask(upstream.aclose))
