"""The platform's workloads in global (pure): today the controller.

`kubeglobe-controller`: a Deployment of `controller_replicas` (2) under the
ServiceAccount and ClusterRole the install gives it, one leader by the Lease, the others
standing by. Spread over nodes (control-plane ones included: they tolerate the taint),
critical priority, probes on its metrics port (a standby is alive and ready: it is what
takes over), requests and limits, a PodDisruptionBudget keeping one, and a ConfigMap
with the platform API's CA.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.deploy.values import PlatformValues

CONTROLLER = "kubeglobe-controller"
PLATFORM_CA = "kubeglobe-platform-ca"
CA_DIR = "/etc/kubeglobe/platform-ca"
METRICS_PORT = 9090
PART_OF = {"app.kubernetes.io/part-of": "kubeglobe"}

Manifest = dict[str, Any]


def _spread(name: str) -> dict[str, Any]:
    """Replicas on different nodes when there are enough of them."""
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "topologyKey": "kubernetes.io/hostname"}}]}}


def controller_manifests(values: PlatformValues) -> list[Manifest]:
    labels = {"app.kubernetes.io/name": CONTROLLER, **PART_OF}
    selector = {"matchLabels": {"app.kubernetes.io/name": CONTROLLER}}
    meta = {"name": CONTROLLER, "namespace": SYSTEM_NAMESPACE, "labels": labels}
    probe = {"httpGet": {"path": "/metrics", "port": METRICS_PORT}, "periodSeconds": 5,
             "timeoutSeconds": 3}
    command = ["kubeglobe", "controller", "--heartbeat-seconds", str(values.heartbeat_seconds),
               "--platform-url", values.platform_url, "--platform-ca", f"{CA_DIR}/ca.crt",
               "--metrics-port", str(METRICS_PORT)]
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": CONTROLLER,
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
            "affinity": _spread(CONTROLLER),
            "containers": [{
                "name": "controller",
                "image": values.image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                "readinessProbe": {**probe, "initialDelaySeconds": 2},
                "livenessProbe": {**probe, "initialDelaySeconds": 15, "failureThreshold": 4},
                "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                              "limits": {"memory": "384Mi"}},
                "volumeMounts": [{"name": "platform-ca", "mountPath": CA_DIR,
                                  "readOnly": True}],
            }],
            "volumes": [{"name": "platform-ca", "configMap": {"name": PLATFORM_CA}}],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": PLATFORM_CA, "namespace": SYSTEM_NAMESPACE, "labels": PART_OF},
         "data": {"ca.crt": values.platform_ca_pem}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": values.controller_replicas, "selector": selector,
                  "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": pod}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"minAvailable": 1, "selector": selector}},
    ]
