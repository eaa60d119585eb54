"""What a workload cluster needs to run the agent: a pure function of its settings.

The agent's ServiceAccount is cluster-admin: it acts only as the users the hub names,
and it approves its own client certificate, whose user may only impersonate.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Namespace
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from kubeglobe.agent.apiserver_certificate import AGENT_USER
from kubeglobe.agent.credentials import AGENT_SECRET
from kubeglobe.api.meta import CLUSTER_LABEL, PLATFORM_ADMINS, SYSTEM_NAMESPACE
from kubeglobe.kube.secrets import b64

AGENT_NAME = "kubeglobe-agent"
PLATFORM_ADMIN_BINDING = "kubeglobe:platform-admins"
IMPERSONATOR = "kubeglobe-agent-impersonator"
_MANAGED = {"app.kubernetes.io/managed-by": "kubeglobe"}


def _binding(name: str, subject: dict[str, str], role: str = "cluster-admin") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": _MANAGED},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [subject],
    }


def impersonator_role() -> dict[str, Any]:
    """All the agent's client certificate may do: act as the users the hub names."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": IMPERSONATOR, "labels": _MANAGED},
        "rules": [
            {"apiGroups": [""], "resources": ["users", "groups", "serviceaccounts"],
             "verbs": ["impersonate"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/*", "uids"],
             "verbs": ["impersonate"]},
        ],
    }


def platform_admins_binding() -> dict[str, Any]:
    """Platform admins are cluster-admins on every managed cluster (import and register)."""
    return _binding(PLATFORM_ADMIN_BINDING, {"apiGroup": "rbac.authorization.k8s.io",
                                             "kind": "Group", "name": PLATFORM_ADMINS})


def agent_manifests(*, cluster: str, hub_url: str, hub_ca_pem: str, bootstrap_token: str,
                    image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": AGENT_NAME, CLUSTER_LABEL: cluster}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": AGENT_NAME, "namespace": SYSTEM_NAMESPACE}},
        _binding(AGENT_NAME, {"kind": "ServiceAccount", "name": AGENT_NAME,
                              "namespace": SYSTEM_NAMESPACE}),
        impersonator_role(),
        _binding(IMPERSONATOR, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                "name": AGENT_USER}, role=IMPERSONATOR),
        platform_admins_binding(),
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": AGENT_SECRET, "namespace": SYSTEM_NAMESPACE},
         "data": {"bootstrap-token": b64(bootstrap_token), "hub-url": b64(hub_url),
                  "hub-ca.crt": b64(hub_ca_pem), "cluster": b64(cluster)}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": AGENT_NAME, "namespace": SYSTEM_NAMESPACE, "labels": labels},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
             "strategy": {"type": "Recreate"},
             "template": {
                 "metadata": {"labels": labels},
                 "spec": {
                     "serviceAccountName": AGENT_NAME,
                     "containers": [{
                         "name": "agent",
                         "image": image,
                         "imagePullPolicy": "IfNotPresent",
                         "command": ["kubeglobe", "agent", "--from-secret", AGENT_SECRET],
                         "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                       "limits": {"memory": "256Mi"}},
                     }],
                 },
             },
         }},
    ]


async def own_bindings_by_namespace(client: AsyncClient) -> None:
    """Make the agent's namespace own its cluster-wide bindings, so deleting it (what
    unregistering does) removes them too: no request has to outlive the rights it needs."""
    namespace = await client.get(Namespace, SYSTEM_NAMESPACE)
    assert namespace.metadata is not None
    owner = {"apiVersion": "v1", "kind": "Namespace", "name": SYSTEM_NAMESPACE,
             "uid": namespace.metadata.uid}
    patch = {"metadata": {"ownerReferences": [owner]}}
    for name in (AGENT_NAME, PLATFORM_ADMIN_BINDING, IMPERSONATOR):
        await client.patch(ClusterRoleBinding, name, patch)
    await client.patch(ClusterRole, IMPERSONATOR, patch)
