"""The cluster proxy's route as plain ASGI, ahead of FastAPI's routing.

Proxied requests are the API server's hot path: every kubectl call to a registered
cluster passes here. FastAPI's route scan, its inner middleware and dependency
injection cost about a third of the server's time on such a request (py-spy), so
`/clusters/{name}/k8s/...` is answered here. The FastAPI route stays, for the OpenAPI
document, and answers through the same `serve`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from kubeglobe.failures import count
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.status import status

PROXY_ROUTE = "/clusters/{name}/k8s/{path:path}"
PROXY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_PATH = re.compile(r"^/clusters/([^/]+)/k8s/(.*)$", re.DOTALL)
log = logging.getLogger("kubeglobe.proxy")

Authenticate = Callable[[Request], Awaitable[Identity]]
Forward = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    path: str = PROXY_ROUTE  # what request metrics label it with


async def serve(authenticate: Authenticate, forward: Forward, *, name: str, path: str,
                request: Request, identity: Identity | None = None) -> Response:
    """One proxied request; every refusal is a Kubernetes Status kubectl can show."""
    try:
        if identity is None:
            identity = await authenticate(request)
        return await forward(name=name, path=path, request=request, identity=identity)
    except HTTPException as e:
        return JSONResponse(status(e.status_code, str(e.detail)), e.status_code,
                            headers=dict(e.headers or {}))
    except Exception as e:  # a bug: still a Status kubectl shows, never a bare 500 page
        log.exception("proxying to cluster %s failed", name)
        count(component="server", operation="proxy", error=e)
        return JSONResponse(status(500, f"proxy error: {e}"), 500)


class ProxyRoute:
    """ASGI middleware: proxied requests go to `serve`, everything else to `app`."""

    def __init__(self, app: ASGIApp, *, authenticate: Authenticate, forward: Forward) -> None:
        self.app = app
        self._authenticate = authenticate
        self._forward = forward
        self._route = _Route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in PROXY_METHODS:
            found = _PATH.match(scope["path"])
            if found is not None:
                scope["route"] = self._route
                response = await serve(self._authenticate, self._forward,
                                       name=found.group(1), path=found.group(2),
                                       request=Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
