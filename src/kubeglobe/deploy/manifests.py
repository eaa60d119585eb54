"""The platform's workloads in global (pure): the controller and the API servers.

`kubeglobe-controller`: a Deployment of `controller_replicas` (2) under the
ServiceAccount and ClusterRole the install gives it, one leader by the Lease, the others
standing by. Spread over nodes (control-plane ones included: they tolerate the taint),
critical priority, probes on its metrics port (a standby is alive and ready: it is what
takes over), requests and limits, a PodDisruptionBudget keeping one, and a ConfigMap
with the platform API's CA.

`kubeglobe-server`: a Deployment of `server_replicas` (2) under the install's
`kubeglobe-server` ServiceAccount, TLS on port 8443 with the certificate of Secret
`kubeglobe-server-tls` (valid for the platform servers' name), its pod address
advertised to agents, the agents CA and the client certificate for the gateway's port
from Secrets of their own; probes on `/readyz` and `/healthz`, a PodDisruptionBudget,
and the `kubeglobe-server` Service whose Endpoints the gateway sends requests to.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.deploy.values import PlatformValues

CONTROLLER = "kubeglobe-controller"
SERVER = "kubeglobe-server"
SERVER_PORT = 8443
SERVER_TLS = "kubeglobe-server-tls"  # the replicas' serving certificate and key
AGENTS_CA = "kubeglobe-agents-ca"  # the CA (and key) that signs agents' gateway certificates
GATEWAY_CLIENT = "kubeglobe-server-gateway-client"  # for the gateway's port to the agents
PLATFORM_CA = "kubeglobe-platform-ca"
CA_DIR = "/etc/kubeglobe/platform-ca"
METRICS_PORT = 9090
PART_OF = {"app.kubernetes.io/part-of": "kubeglobe"}
PLATFORM_SET = "kubeglobe-platform-set"  # the ApplySet's parent ConfigMap (deploy/applyset.py)

Manifest = dict[str, Any]


def _spread(name: str) -> dict[str, Any]:
    """Replicas on different nodes when there are enough of them."""
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "topologyKey": "kubernetes.io/hostname"}}]}}


def _secret_volume(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret, "defaultMode": 0o400}}


def _workload(name: str, replicas: int, container: dict[str, Any],
              volumes: list[dict[str, Any]], **pod_spec: Any) -> list[Manifest]:
    """A Deployment of the platform (its own ServiceAccount, critical priority, spread
    over nodes, control-plane ones tolerated, rolled one surge at a time) and its
    PodDisruptionBudget keeping one."""
    labels = {"app.kubernetes.io/name": name, **PART_OF}
    selector = {"matchLabels": {"app.kubernetes.io/name": name}}
    meta = {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": labels}
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": name,
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
            "affinity": _spread(name),
            **pod_spec,
            "containers": [container],
            "volumes": volumes,
        },
    }
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": replicas, "selector": selector,
                  "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": pod}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"minAvailable": 1, "selector": selector}},
    ]


def _probes(http_get: dict[str, Any], *, ready: str | None = None) -> dict[str, Any]:
    every = {"periodSeconds": 5, "timeoutSeconds": 3}
    readiness = {**http_get, "path": ready} if ready else http_get
    return {"readinessProbe": {"httpGet": readiness, **every, "initialDelaySeconds": 2},
            "livenessProbe": {"httpGet": http_get, **every, "initialDelaySeconds": 15,
                              "failureThreshold": 4}}


def controller_manifests(values: PlatformValues) -> list[Manifest]:
    container = {
        "name": "controller",
        "image": values.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kubeglobe", "controller",
                    "--heartbeat-seconds", str(values.heartbeat_seconds),
                    "--platform-url", values.platform_url,
                    "--platform-ca", f"{CA_DIR}/ca.crt", "--metrics-port", str(METRICS_PORT)],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        **_probes({"path": "/metrics", "port": METRICS_PORT}),
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"memory": "384Mi"}},
        "volumeMounts": [{"name": "platform-ca", "mountPath": CA_DIR, "readOnly": True}],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": PLATFORM_CA, "namespace": SYSTEM_NAMESPACE, "labels": PART_OF},
         "data": {"ca.crt": values.platform_ca_pem}},
        *_workload(CONTROLLER, values.controller_replicas, container,
                   [{"name": "platform-ca", "configMap": {"name": PLATFORM_CA}}]),
    ]


def server_manifests(values: PlatformValues) -> list[Manifest]:
    mounts = {"tls": "/etc/kubeglobe/tls", "agents-ca": "/etc/kubeglobe/agents-ca",
              "gateway-client": "/etc/kubeglobe/gateway-client", "platform-ca": CA_DIR}
    container = {
        "name": "server",
        "image": values.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "kubeglobe", "server", "--host", "0.0.0.0", "--port", str(SERVER_PORT),
            "--tls-cert", f"{mounts['tls']}/tls.crt", "--tls-key", f"{mounts['tls']}/tls.key",
            "--advertise-url", f"https://$(POD_IP):{SERVER_PORT}",
            "--public-url", values.platform_url, "--ca-file", f"{CA_DIR}/ca.crt",
            "--agent-image", values.image, "--agent-gateway", values.agent_gateway,
            "--agents-ca-cert", f"{mounts['agents-ca']}/tls.crt",
            "--agents-ca-key", f"{mounts['agents-ca']}/tls.key",
            "--servers-gateway", values.servers_gateway,
            "--servers-gateway-cert", f"{mounts['gateway-client']}/tls.crt",
            "--servers-gateway-key", f"{mounts['gateway-client']}/tls.key"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "https", "containerPort": SERVER_PORT, "protocol": "TCP"}],
        **_probes({"path": "/healthz", "port": SERVER_PORT, "scheme": "HTTPS"},
                  ready="/readyz"),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": n, "mountPath": m, "readOnly": True}
                         for n, m in mounts.items()],
    }
    volumes = [_secret_volume("tls", SERVER_TLS), _secret_volume("agents-ca", AGENTS_CA),
               _secret_volume("gateway-client", GATEWAY_CLIENT),
               {"name": "platform-ca", "configMap": {"name": PLATFORM_CA}}]
    return [
        # Agents' tunnels end at a replica: a leaving one has 30 s to let them move.
        *_workload(SERVER, values.server_replicas, container, volumes,
                   terminationGracePeriodSeconds=30),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": SERVER, "namespace": SYSTEM_NAMESPACE,
                      "labels": {"app.kubernetes.io/name": SERVER, **PART_OF}},
         "spec": {"selector": {"app.kubernetes.io/name": SERVER},
                  # 1.20's server-side apply keys Service ports by port and protocol
                  "ports": [{"name": "https", "port": 443, "targetPort": SERVER_PORT,
                             "protocol": "TCP"}]}},
    ]
