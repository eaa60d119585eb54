"""`Cluster`: a workload cluster known to the hub (cluster-scoped, in the global cluster).

Spec is what people ask for (how the hub reaches the cluster); status is what the
controller observed. Exactly one function in the controller writes each status field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeglobe.api.meta import SYSTEM_NAMESPACE

Phase = Literal["Pending", "Connecting", "Ready", "Unavailable", "Rejected", "Terminating"]
Mode = Literal["import", "register"]


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class SecretRef(Model):
    """A Secret in the global cluster holding a kubeconfig (import mode)."""

    name: str = Field(min_length=1, max_length=253)
    namespace: str = Field(default=SYSTEM_NAMESPACE, min_length=1, max_length=63)
    key: str = Field(default="kubeconfig", min_length=1)


class ClusterSpec(Model):
    mode: Mode = Field(description="import: the hub dials the cluster; register: an agent "
                       "in the cluster dials the hub")
    displayName: str | None = Field(default=None, max_length=256)
    kubeconfigSecretRef: SecretRef | None = Field(
        default=None, description="import mode: the Secret with the cluster's kubeconfig"
    )

    @model_validator(mode="after")
    def _mode_needs_its_fields(self) -> ClusterSpec:
        if self.mode == "import" and self.kubeconfigSecretRef is None:
            raise ValueError("mode import needs spec.kubeconfigSecretRef (the Secret with "
                             "the cluster's kubeconfig)")
        if self.mode == "register" and self.kubeconfigSecretRef is not None:
            raise ValueError("mode register takes no kubeconfigSecretRef: the agent dials in")
        return self


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    lastTransitionTime: str | None = None


class ClusterStatus(Model):
    phase: Phase = "Pending"
    message: str | None = None
    kubernetesVersion: str | None = None
    nodeCount: int | None = None
    readyNodeCount: int | None = None
    capacity: dict[str, str] = Field(default_factory=dict)
    allocatable: dict[str, str] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    lastHeartbeatTime: str | None = None
    agentVersion: str | None = None
    observedGeneration: int | None = None


class ClusterResource(Model):
    """The CRD's shape: kind Cluster, plural clusters, cluster-scoped."""

    spec: ClusterSpec
    status: ClusterStatus | None = None


CLUSTER_KIND = "Cluster"
CLUSTER_PLURAL = "clusters"
