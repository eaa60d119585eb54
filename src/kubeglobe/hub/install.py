"""`kubeglobe install`: the platform's CRDs, namespace and RBAC in the global cluster.

`platform_manifests` is pure; `install` applies them with server-side apply (so a second
run changes nothing), waits for the CRDs to be served, and creates the platform's tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Secret
from pydantic import BaseModel

from kubeglobe.api.alb import FrontendResource, GatewayResource, RuleResource
from kubeglobe.api.cluster import CLUSTER_KIND, CLUSTER_PLURAL, ClusterResource
from kubeglobe.api.crd import CrdNames, crd_manifest
from kubeglobe.api.meta import FIELD_MANAGER, GROUP, PLATFORM_ADMINS, SYSTEM_NAMESPACE
from kubeglobe.api.tenancy import (
    GroupResource,
    PlatformRoleBindingResource,
    ProjectNamespaceResource,
    ProjectResource,
    UserResource,
)
from kubeglobe.hub.missing import missing_ok_sync
from kubeglobe.hub.tokens import ADMIN_USER, BOOTSTRAP_LABEL, issue_token
from kubeglobe.kube.secrets import b64

Manifest = dict[str, Any]
CRD_READY_TIMEOUT = 60.0
WEBHOOK_PATH = "/admission/tenancy"  # served by the platform API (server/admission.py)


class InstallError(RuntimeError):
    pass


def cluster_crd() -> Manifest:
    columns = [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Version", "type": "string", "jsonPath": ".status.kubernetesVersion"},
        {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodeCount"},
        {"name": "Heartbeat", "type": "date", "jsonPath": ".status.lastHeartbeatTime"},
    ]
    return crd_manifest(
        model=ClusterResource,
        names=CrdNames(kind=CLUSTER_KIND, plural=CLUSTER_PLURAL, singular="cluster",
                       short_names=("kgc",)),
        printer_columns=columns,
    )


def alb_crds() -> list[Manifest]:
    """The ALB's Gateways, Frontends and Rules (issue 16; not installed until its
    operator is)."""
    kinds: list[tuple[type[BaseModel], CrdNames, list[Manifest]]] = [
        (GatewayResource, CrdNames("Gateway", "gateways", "gateway", ("kggw",)),
         [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
          {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
          {"name": "VIP", "type": "string", "jsonPath": ".spec.vip"}]),
        (FrontendResource, CrdNames("Frontend", "frontends", "frontend", ("kgft",)),
         [{"name": "Gateway", "type": "string", "jsonPath": ".spec.gateway"},
          {"name": "Port", "type": "integer", "jsonPath": ".spec.port"},
          {"name": "Protocol", "type": "string", "jsonPath": ".spec.protocol"}]),
        (RuleResource, CrdNames("Rule", "rules", "rule", ("kgrule",)),
         [{"name": "Frontend", "type": "string", "jsonPath": ".spec.frontend"},
          {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"}]),
    ]
    return [crd_manifest(model=m, names=n, printer_columns=c) for m, n, c in kinds]


def tenancy_crds() -> list[Manifest]:
    """Projects, project namespaces, users, groups and platform role bindings."""
    kinds: list[tuple[type[BaseModel], CrdNames, list[Manifest]]] = [
        (ProjectResource, CrdNames("Project", "projects", "project", ("kgp",)), []),
        (ProjectNamespaceResource,
         CrdNames("ProjectNamespace", "projectnamespaces", "projectnamespace", ("kgns",)),
         [{"name": "Project", "type": "string", "jsonPath": ".spec.project"},
          {"name": "Cluster", "type": "string", "jsonPath": ".spec.cluster"},
          {"name": "Namespace", "type": "string", "jsonPath": ".spec.namespace"}]),
        (UserResource, CrdNames("User", "users", "user", ("kgu",)),
         [{"name": "Disabled", "type": "boolean", "jsonPath": ".spec.disabled"},
          {"name": "Locked-Until", "type": "string", "jsonPath": ".status.lockedUntil"},
          {"name": "Last-Login", "type": "date", "jsonPath": ".status.lastLoginTime"}]),
        (GroupResource, CrdNames("Group", "groups", "group", ("kgg",)), []),
        (PlatformRoleBindingResource,
         CrdNames("PlatformRoleBinding", "platformrolebindings", "platformrolebinding",
                  ("kgrb",)),
         [{"name": "Role", "type": "string", "jsonPath": ".spec.role"},
          {"name": "Subject", "type": "string", "jsonPath": ".spec.subject.name"}]),
    ]
    return [crd_manifest(model=m, names=n, printer_columns=c) for m, n, c in kinds]


def _role(name: str, rules: list[Manifest]) -> list[Manifest]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name,
                       "namespace": SYSTEM_NAMESPACE}]},
    ]


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where the global cluster reaches the platform API's admission webhook."""

    url: str
    ca_pem: str


def webhook_manifest(endpoint: WebhookEndpoint) -> Manifest:
    """Every write of a tenancy resource is checked by the platform API first, so quota
    sums and deletion refusals hold for kubectl as for the REST API and CLI."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "kubeglobe-tenancy"},
        "webhooks": [{
            "name": "tenancy.kubeglobe.io",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 20,
            "clientConfig": {"url": endpoint.url,
                             "caBundle": b64(endpoint.ca_pem)},
            "rules": [{"apiGroups": [GROUP], "apiVersions": ["*"],
                       "operations": ["CREATE", "UPDATE", "DELETE"], "scope": "Cluster",
                       "resources": ["projects", "projectnamespaces", "users", "groups",
                                     "platformrolebindings"]}],
        }],
    }


def platform_manifests(webhook: WebhookEndpoint | None = None) -> list[Manifest]:
    reads = ["get", "list", "watch"]
    writes = [*reads, "create", "update", "patch"]
    clusters = {"apiGroups": [GROUP], "resources": ["*", "*/status"],
                "verbs": [*writes, "delete"]}
    secrets = {"apiGroups": [""], "resources": ["secrets"], "verbs": [*writes, "delete"]}
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": writes}
    events = {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
              "verbs": ["create", "patch"]}
    crds = {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
            "verbs": reads}
    namespaces = {"apiGroups": [""], "resources": ["namespaces"], "verbs": reads}
    endpoints = {"apiGroups": [""], "resources": ["endpoints"], "verbs": reads}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}},
        cluster_crd(),
        *tenancy_crds(),
        *_role("kubeglobe-controller", [clusters, secrets, leases, events, crds, namespaces]),
        # the replicas publish their Leases (agents list them), check the namespace and
        # tell agents where the gateway replicas are (their Service's Endpoints)
        *_role("kubeglobe-server", [clusters, secrets, {**leases, "verbs": [
            *leases["verbs"], "delete"]}, namespaces, endpoints]),
        # the gateway only reads: tokens, users, groups, clusters and their kubeconfigs,
        # and where the API server replicas are
        *_role("kubeglobe-gateway", [{**clusters, "verbs": reads}, {**secrets, "verbs": reads},
                                     endpoints]),
        *([webhook_manifest(webhook)] if webhook is not None else []),
    ]


def _wait_established(client: Client, name: str) -> None:
    deadline = time.monotonic() + CRD_READY_TIMEOUT
    while time.monotonic() < deadline:
        crd = client.get(CustomResourceDefinition, name)
        conditions = crd.status.conditions if crd.status and crd.status.conditions else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.5)
    raise InstallError(f"CRD {name} was not established within {CRD_READY_TIMEOUT:.0f}s")


def ensure_bootstrap_admin(client: Client) -> str | None:
    """Create the bootstrap admin's token unless one exists; the token if created."""
    existing = list(client.list(Secret, namespace=SYSTEM_NAMESPACE,
                                labels={BOOTSTRAP_LABEL: "true"}))
    if existing:
        return None
    issued = issue_token(user=ADMIN_USER, groups=(PLATFORM_ADMINS,),
                         labels={BOOTSTRAP_LABEL: "true"})
    client.create(codecs.from_dict(issued.manifest))
    return issued.token


CONTROLLER_TOKEN_SECRET = "kubeglobe-controller-token"
CONTROLLER_USER = "kubeglobe:controller"


def ensure_controller_token(client: Client) -> None:
    """A platform-admin token for the controller, kept (raw) in a Secret only it reads:
    it reaches registered clusters through the platform API's proxy like any client."""
    if missing_ok_sync(lambda: client.get(Secret, CONTROLLER_TOKEN_SECRET,
                                          namespace=SYSTEM_NAMESPACE)) is not None:
        return
    issued = issue_token(user=CONTROLLER_USER, groups=(PLATFORM_ADMINS,))
    client.create(codecs.from_dict(issued.manifest))
    client.create(codecs.from_dict({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": CONTROLLER_TOKEN_SECRET, "namespace": SYSTEM_NAMESPACE},
        "stringData": {"token": issued.token},
    }))


def install(client: Client, webhook: WebhookEndpoint | None = None) -> str | None:
    """Apply every platform manifest; returns the bootstrap admin token on first install.

    Without `webhook` the tenancy rules are still applied by the controller (a namespace
    that does not fit is Rejected in its status) but not refused at admission."""
    manifests = platform_manifests(webhook)
    for manifest in manifests:
        try:
            client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
        except ApiError as e:
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            raise InstallError(f"applying {kind} {name} failed: {e.status.message}") from e
    for manifest in manifests:  # all applied first: the apiservers establish them together
        if manifest["kind"] == "CustomResourceDefinition":
            _wait_established(client, manifest["metadata"]["name"])
    ensure_controller_token(client)
    return ensure_bootstrap_admin(client)
