"""The FastAPI application: health, metrics, REST views and the cluster proxy.

The app is stateless: every answer comes from the global cluster's resources, so any
number of replicas can serve behind one endpoint. Its collaborators (the hub client,
cluster access) are passed in, never read from globals.
"""


import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Namespace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from pydantic import BaseModel

from kubeglobe import __version__
from kubeglobe.agent.manifests import agent_manifests
from kubeglobe.api.meta import CLUSTER_HEADER, PLATFORM_IMAGE, SYSTEM_NAMESPACE
from kubeglobe.api.names import ClusterName
from kubeglobe.hub.accounts.store import Accounts
from kubeglobe.hub.agent_certificates import AgentsCA, RequestRefused, sign_agent_request
from kubeglobe.hub.cluster_access import ClusterAccess
from kubeglobe.hub.onboarding import OnboardingError
from kubeglobe.hub.registration import redeem_bootstrap_token
from kubeglobe.hub.tokens import Identity
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.kube.upgrade import Endpoint
from kubeglobe.server.accounts_api import accounts_router
from kubeglobe.server.admission import TenancyView, WorkloadProbe, admission_router
from kubeglobe.server.auth import TokenAuthenticator
from kubeglobe.server.authorize import Authorizer
from kubeglobe.server.clusters import ClusterView, Registration, cluster_router
from kubeglobe.server.errors import (
    AUTHENTICATED,
    BODY,
    KubeStatus,
    errors,
    install_error_handlers,
)
from kubeglobe.server.metrics import RequestMetrics
from kubeglobe.server.proxy import ClusterProxy
from kubeglobe.server.proxy_route import PROXY_METHODS, PROXY_ROUTE, ProxyRoute, serve
from kubeglobe.server.replicas import ReplicaRegistry, gateway_replicas
from kubeglobe.server.streams import StreamProxy
from kubeglobe.server.tenancy_api import tenancy_router
from kubeglobe.server.tunnels import TunnelHub, calling_agent, serve_tunnel


class Health(BaseModel):
    status: str


class AgentRegistration(BaseModel):
    cluster: ClusterName
    bootstrapToken: str
    agentVersion: str | None = None


class AgentCredential(BaseModel):
    credential: str


class AgentReplicas(BaseModel):
    replicas: list[str]  # the API server replicas' own URLs: a tunnel to each
    # HOST:PORT of each gateway replica's agent port: the agent's HAProxy attaches to
    # each; empty where the gateway is one address (then `gatewayAddress`)
    gateways: list[str] = []


class GatewayCertificateRequest(BaseModel):
    csr: str  # PEM; only its public key is used


class GatewayCertificate(BaseModel):
    certificate: str  # PEM, CN = the cluster, O = the Cluster's UID
    gatewayAddress: str  # HOST:PORT of the gateway's agent port (reverse HTTP)
    gatewayCA: str  # PEM of the CA the gateway's serving certificate chains to


@dataclass(frozen=True)
class ServerSettings:
    advertise_url: str = "https://127.0.0.1:8443"  # how agents reach this replica (its Lease)
    public_url: str = "https://127.0.0.1:8443"  # how agents and people reach the platform
    ca_file: str | None = None  # CA of the serving certificates: agents', the gateway's
    agent_image: str = f"{PLATFORM_IMAGE}:{__version__}"
    agent_gateway: str | None = None  # HOST:PORT where agents attach to the gateway
    agents_ca: AgentsCA | None = None  # signs their certificates for that port
    agents_via_gateway: Endpoint | None = None  # the gateway's port for the servers' streams


def create_app(*, hub: AsyncClient, settings: ServerSettings | None = None,
               access: ClusterAccess | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    access = access or ClusterAccess(hub=hub)
    authenticate = TokenAuthenticator(accounts=Accounts(hub))
    authorize = Authorizer(hub=hub)
    tunnels = TunnelHub(hub=hub)
    proxy = ClusterProxy(access=access, tunnels=tunnels)
    ca_pem = Path(settings.ca_file).read_text() if settings.ca_file else ""

    def registration(cluster: ClusterView, token: str) -> Registration:
        manifests = agent_manifests(cluster=cluster.name, hub_url=settings.public_url,
                                    hub_ca_pem=ca_pem, bootstrap_token=token,
                                    image=settings.agent_image)
        return Registration(
            cluster=cluster, bootstrapToken=token,
            manifest=yaml.safe_dump_all(manifests, sort_keys=False),
            command=(f"kubectl apply -f <manifest>   # or, beside the cluster: kubeglobe agent "
                     f"--hub-url {settings.public_url} --hub-ca CA --cluster {cluster.name} "
                     "--state-dir DIR (with DIR/bootstrap-token)"),
        )
    registry = CollectorRegistry()
    tenancy_view = TenancyView(hub)
    replicas = ReplicaRegistry(hub, settings.advertise_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tenancy_view.start()
        replicas.start()
        try:
            yield
        finally:
            await tenancy_view.stop()
            await replicas.stop()
            await access.aclose()

    app = FastAPI(title="KubeGlobe API", version=__version__, lifespan=lifespan,
                  description="The platform API: clusters, the cluster proxy, users, "
                  "tokens, projects and their namespaces, role bindings.")
    install_error_handlers(app)

    # Inside the metrics, so proxied requests are counted too (middleware added last
    # runs first).
    app.add_middleware(ProxyRoute, authenticate=authenticate, forward=proxy.forward)
    app.add_middleware(RequestMetrics, registry=registry)

    @app.get("/healthz", tags=["health"], response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", tags=["health"], response_model=Health, responses={
        503: {"model": Health, "description": "The global cluster does not answer."}})
    async def readyz() -> JSONResponse:
        try:
            await hub.get(Namespace, SYSTEM_NAMESPACE)
        except KUBE_ERRORS as e:  # not ready is an answer, not a crash
            return JSONResponse({"status": f"global cluster unreachable: {e}"}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse,
             responses={200: {"description": "Prometheus' text format"}})
    async def metrics() -> Response:
        # the app's own metrics, and the process's (failures.py counts there)
        return Response(generate_latest(registry) + generate_latest(REGISTRY),
                        media_type=CONTENT_TYPE_LATEST)

    app.include_router(cluster_router(authenticate=authenticate, authorize=authorize,
                                      registration=registration))
    app.include_router(accounts_router(authenticate=authenticate, authorize=authorize))
    app.include_router(tenancy_router(authenticate=authenticate, authorize=authorize))
    app.include_router(admission_router(view=tenancy_view, probe=WorkloadProbe(
        hub=hub, platform_url=settings.public_url, ca_file=settings.ca_file)))

    @app.post("/api/v1/agent/register", tags=["agent"], response_model=AgentCredential,
              responses=errors(*BODY, 401, 410, 502))
    async def register_agent(body: AgentRegistration) -> AgentCredential:
        """An agent trades its one-time bootstrap token for its cluster's credential."""
        try:
            credential = await redeem_bootstrap_token(hub=hub, cluster=body.cluster,
                                                      token=body.bootstrapToken)
        except OnboardingError as e:
            raise HTTPException(e.status, detail=str(e)) from e
        return AgentCredential(credential=credential)

    async def agent_of(request: Request, named: Annotated[ClusterName | None, Header(
            alias=CLUSTER_HEADER, description="the agent's cluster")] = None) -> str:
        """The cluster whose agent is calling, by its credential (else 401). The header
        is declared here so that it is documented and checked against the name rule."""
        cluster = await calling_agent(hub, request.headers)
        if cluster is None:
            raise HTTPException(401, detail="unknown cluster or agent credential")
        return cluster

    @app.get("/api/v1/agent/replicas", tags=["agent"], response_model=AgentReplicas,
             responses=errors(401, 422, 502))
    async def agent_replicas(cluster: Annotated[str, Depends(agent_of)]) -> AgentReplicas:
        """The live API server replicas, an agent keeps a tunnel to each, and the
        gateway's, where its HAProxy attaches to each."""
        return AgentReplicas(replicas=await replicas.live(),
                             gateways=await gateway_replicas(hub))

    @app.post("/api/v1/agent/gateway-certificate", tags=["agent"],
              response_model=GatewayCertificate,
              responses=errors(*BODY, 401, 404, 502))
    async def agent_gateway_certificate(
            body: GatewayCertificateRequest,
            cluster: Annotated[str, Depends(agent_of)]) -> GatewayCertificate:
        """Sign the agent's key for the gateway's agent port, where the agent's own
        HAProxy attaches and serves the gateway's requests (reverse HTTP)."""
        if settings.agent_gateway is None or settings.agents_ca is None:
            raise HTTPException(404, detail="this platform has no agent port on its gateway; "
                                "agents serve it through their tunnels")
        found = await hub.get(ClusterCR, cluster)
        uid = found.metadata.uid if found.metadata and found.metadata.uid else ""
        try:
            cert = sign_agent_request(body.csr.encode(), cluster=cluster, cluster_uid=uid,
                                      ca=settings.agents_ca, now=dt.datetime.now(dt.UTC))
        except RequestRefused as e:
            raise HTTPException(422, detail=str(e)) from e
        return GatewayCertificate(certificate=cert.decode(), gatewayCA=ca_pem,
                                  gatewayAddress=settings.agent_gateway)

    @app.websocket("/api/v1/agent/tunnel")
    async def agent_tunnel(ws: WebSocket) -> None:
        await serve_tunnel(tunnels, ws)

    async def cluster_proxy(name: ClusterName, path: str, request: Request,
                            identity: Annotated[Identity, Depends(authenticate)],
                            ) -> Response:
        """Any Kubernetes API request to cluster `name`, as the calling user.

        (Served by `ProxyRoute` ahead of FastAPI; this route documents it.)"""
        return await serve(authenticate, proxy.forward, name=name, path=path,
                           request=request, identity=identity)

    for method in PROXY_METHODS:  # one operation per method: OpenAPI ids must be unique
        app.add_api_route(PROXY_ROUTE, cluster_proxy, methods=[method], tags=["proxy"],
                          operation_id=f"cluster_proxy_{method.lower()}", responses={
                              200: {"description": "The cluster's own answer (any status "
                                                   "and body it gives)"},
                              **errors(*AUTHENTICATED, 404, 422, body=KubeStatus)})

    # Upgraded requests (exec, attach, port-forward) bypass ASGI: see server/upgrade.py.
    app.state.streams = StreamProxy(authenticate=authenticate, proxy=proxy, access=access,
                                    tunnels=tunnels, agents_gateway=settings.agents_via_gateway)
    return app
