"""The platform's API group and the namespace its own objects live in."""

from __future__ import annotations

GROUP = "kubeglobe.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SYSTEM_NAMESPACE = "kubeglobe-system"
FIELD_MANAGER = "kubeglobe"
CLUSTER_LABEL = "kubeglobe.io/cluster"  # on what the platform keeps per cluster
