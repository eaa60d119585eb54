"""What a platform installation is made of: the settings its manifests are rendered from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kubeglobe.api.meta import CONTROL_PLANE_ROLE


class PlatformValues(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = Field(description="The platform image every component runs.")
    platform_url: str = Field(
        description="Where the platform API is reached (the gateway), by the controller "
                    "for registered clusters.")
    platform_ca_pem: str = Field(description="The CA that signed the platform API's certificate.")
    agent_gateway: str = Field(
        description="HOST:PORT of the gateway's agent port (reverse HTTP), for the agent "
                    "manifests the servers hand out.")
    servers_gateway: str = Field(
        description="HOST:PORT of the gateway's port through which the servers reach "
                    "attached agents.")
    platform_port: int = Field(
        default=8443, ge=1, le=65535,
        description="The port of the platform API on each gateway replica (its node's "
                    "address: the gateway runs in the host network of the control-plane "
                    "nodes).")
    agent_port: int = Field(default=8444, ge=1, le=65535,
                            description="Each gateway replica's port for agents.")
    servers_port: int = Field(
        default=8445, ge=1, le=65535,
        description="Each gateway replica's port through which the API servers reach "
                    "attached agents.")
    gateway_runtime_dir: str = Field(
        default="/run/kubeglobe/gateway",
        description="A directory on each gateway node (host path) where the replica keeps "
                    "its HAProxy files and sockets, in a subdirectory named by the node.")
    gateway_node_selector: dict[str, str] = Field(
        default={CONTROL_PLANE_ROLE: ""},
        description="The nodes the gateway runs on (one replica each): the control-plane "
                    "nodes unless said otherwise.")
    controller_replicas: int = Field(default=2, ge=1, le=5)
    server_replicas: int = Field(default=2, ge=1, le=9)
    heartbeat_seconds: float = Field(default=10.0, gt=0, le=300)
