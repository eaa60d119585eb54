"""The platform's image registry in global (pure): Debian's `docker-registry` as pods.

One replica on each control-plane node (a DaemonSet there, host network, port 5000), all
three over one shared storage, so a push to any of them is served by every one. The
stable name is the image prefix `kubeglobe.local`: every node's containerd lists the three
node addresses as its mirrors and pulls on from the next while one is away. A ClusterIP
Service gives pods of global the same registry by name. Critical priority, probes on
`/v2/`, requests and limits, and a PodDisruptionBudget that lets one go at a time.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.api.meta import CONTROL_PLANE_ROLE, SYSTEM_NAMESPACE

NAME = "kubeglobe-registry"
PORT = 5000
IMAGE_PREFIX = "kubeglobe.local"  # what the platform's image names start with
STORAGE = "/var/lib/registry"  # inside the pod (the image's configuration says so)
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "kubeglobe"}

Manifest = dict[str, Any]


def registry_manifests(*, image: str, storage: str) -> list[Manifest]:
    """`storage`: the directory the replicas share (a hostPath each node sees the same)."""
    meta = {"name": NAME, "namespace": SYSTEM_NAMESPACE, "labels": LABELS}
    selector = {"matchLabels": {"app.kubernetes.io/name": NAME}}
    probe = {"httpGet": {"path": "/v2/", "port": PORT}, "periodSeconds": 5,
             "timeoutSeconds": 2}
    pod = {
        "metadata": {"labels": LABELS},
        "spec": {
            "hostNetwork": True,  # the nodes' containerd reach it on the node's address
            "dnsPolicy": "Default",
            "automountServiceAccountToken": False,  # it never talks to Kubernetes
            "priorityClassName": "system-cluster-critical",
            "nodeSelector": {CONTROL_PLANE_ROLE: ""},
            "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "containers": [{
                "name": "registry",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "registry", "containerPort": PORT, "protocol": "TCP"}],
                "readinessProbe": {**probe, "initialDelaySeconds": 1},
                "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 5},
                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"},
                              "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "storage", "mountPath": STORAGE}],
            }],
            "volumes": [{"name": "storage",
                         "hostPath": {"path": storage, "type": "DirectoryOrCreate"}}],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
         "spec": {"selector": selector, "template": pod,
                  "updateStrategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1}}}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"maxUnavailable": 1, "selector": selector}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": selector["matchLabels"],
                  "ports": [{"name": "registry", "port": PORT, "protocol": "TCP"}]}},
    ]


def repository_of(image: str) -> tuple[str, str]:
    """`kubeglobe.local/kubeglobe:1.0` -> ("kubeglobe", "1.0"): the registry's own names."""
    prefix = f"{IMAGE_PREFIX}/"
    if not image.startswith(prefix) or ":" not in image[len(prefix):]:
        raise ValueError(f"image {image!r} is not one of the platform registry's; "
                         f"name it {prefix}NAME:TAG")
    repository, tag = image[len(prefix):].rsplit(":", 1)
    return repository, tag
