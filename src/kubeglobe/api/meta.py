"""Names the platform's parts share: its API group, the namespace its own objects live
in, label keys, its image, the HTTP headers between agent, gateway and servers."""

from __future__ import annotations

GROUP = "kubeglobe.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
SYSTEM_NAMESPACE = "kubeglobe-system"
FIELD_MANAGER = "kubeglobe"
CLUSTER_LABEL = "kubeglobe.io/cluster"  # on what the platform keeps per cluster
PLATFORM_IMAGE = "kubeglobe.local/kubeglobe"  # the platform's own image (agent, components)

# HTTP headers the platform's parts agree on (agent, gateway, servers).
CLUSTER_HEADER = "X-KubeGlobe-Cluster"  # which cluster an agent speaks for
METHOD_HEADER = "X-KubeGlobe-Method"  # an upgrade's method across HTTP/2 (gateway/reverse.py)
DETACHED_HEADER = "X-KubeGlobe-Agent-Detached"  # on the gateway's 503 for an agent away
# A DNS name only the platform's serving certificate carries (no other certificate of its CA
# does): the gateway checks it on the API servers, and the servers on the gateway.
PLATFORM_TLS_NAME = "kubeglobe-platform"
PLATFORM_ADMINS = "kubeglobe:platform-admins"  # the group of the platform's admins
# The gateway replicas' headless Service: its Endpoints are where agents attach (the port
# named AGENTS_PORT), one address per replica, each holding the agent's connections.
GATEWAY_SERVICE = "kubeglobe-gateway"
AGENTS_PORT = "agents"
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"  # the label of such a node
