"""The FastAPI application: health, metrics, REST views and the cluster proxy.

The app is stateless: every answer comes from the global cluster's resources, so any
number of replicas can serve behind one endpoint. Its collaborators (the hub client,
cluster access) are passed in, never read from globals.
"""


import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Namespace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from kubeglobe import __version__
from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.hub.cluster_access import ClusterAccess
from kubeglobe.hub.tokens import Identity
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.clusters import cluster_router
from kubeglobe.server.proxy import ClusterProxy

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(*, hub: AsyncClient, access: ClusterAccess | None = None) -> FastAPI:
    access = access or ClusterAccess(hub=hub)
    authenticate = TokenAuthenticator(hub=hub)
    proxy = ClusterProxy(access=access)
    registry = CollectorRegistry()
    requests = Counter("kubeglobe_api_requests", "API requests served",
                       ["route", "method", "code"], registry=registry)
    latency = Histogram("kubeglobe_api_request_seconds", "Time to the response headers",
                        ["route"], registry=registry)

    app = FastAPI(title="KubeGlobe API", version=__version__,
                  description="The platform API: clusters and the cluster proxy.")

    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        latency.labels(name).observe(time.perf_counter() - started)
        requests.labels(name, request.method, str(response.status_code)).inc()
        return response

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        try:
            await hub.get(Namespace, SYSTEM_NAMESPACE)
        except Exception as e:  # not ready is an answer, not a crash
            return JSONResponse({"status": f"global cluster unreachable: {e}"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(cluster_router(authenticate=authenticate))

    @app.api_route("/clusters/{name}/k8s/{path:path}", methods=PROXY_METHODS,
                   tags=["proxy"], include_in_schema=True)
    async def cluster_proxy(name: str, path: str, request: Request,
                            identity: Annotated[Identity, Depends(authenticate)],
                            ) -> StreamingResponse:
        """Any Kubernetes API request to cluster `name`, as the calling user."""
        return await proxy.forward(name=name, path=path, request=request, identity=identity)

    @app.on_event("shutdown")
    async def close() -> None:
        await access.aclose()

    return app
