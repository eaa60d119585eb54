"""What a project namespace is on its cluster: pure, from the ProjectNamespace alone.

A Namespace with the project's labels and the Pod Security labels, a ResourceQuota
with the namespace's quota and a LimitRange with its container defaults. The
propagation controller applies these and puts them back when someone changes them.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.api.tenancy import ProjectNamespaceSpec
from kubeglobe.hub.tenancy.quota import hard_limits

# On every object tenancy makes; pruning selects on it, so objects the platform makes for
# other reasons (the agent's bindings, onboarding's admins binding) are never touched.
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubeglobe", "kubeglobe.io/tenancy": "true"}
PROJECT_LABEL = "kubeglobe.io/project"
QUOTA_NAME = "kubeglobe-project-quota"
LIMITS_NAME = "kubeglobe-defaults"


def namespace_labels(spec: ProjectNamespaceSpec) -> dict[str, str]:
    return {
        **MANAGED_BY,
        PROJECT_LABEL: spec.project,
        "pod-security.kubernetes.io/enforce": spec.podSecurity,
        "pod-security.kubernetes.io/warn": spec.podSecurity,
    }


def namespace_objects(spec: ProjectNamespaceSpec) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": namespace_labels(spec)},
    }]
    hard = hard_limits(spec.quota)
    if hard:
        objects.append({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": QUOTA_NAME, "namespace": spec.namespace,
                         "labels": {**MANAGED_BY, PROJECT_LABEL: spec.project}},
            "spec": {"hard": hard},
        })
    if spec.limits is not None and (spec.limits.default or spec.limits.defaultRequest):
        limit: dict[str, Any] = {"type": "Container"}
        if spec.limits.default:
            limit["default"] = dict(spec.limits.default)
        if spec.limits.defaultRequest:
            limit["defaultRequest"] = dict(spec.limits.defaultRequest)
        objects.append({
            "apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": LIMITS_NAME, "namespace": spec.namespace,
                         "labels": {**MANAGED_BY, PROJECT_LABEL: spec.project}},
            "spec": {"limits": [limit]},
        })
    return objects
