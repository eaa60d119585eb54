"""The cluster DNS's objects in a cluster (pure): `kube-dns`, as kubeadm names it.

In `kube-system`: a ServiceAccount allowed to list and watch Services and Endpoints
and nothing else, a Deployment of `kubeglobe dns` replicas (two by default, spread over nodes when
there are several, tolerating control-plane nodes, critical priority, probes on the
DNS port, requests and limits), a PodDisruptionBudget letting one go at a time, and the
`kube-dns` Service on the cluster's DNS address, the one every kubelet hands its pods.
"""

from __future__ import annotations

from typing import Any

NAME = "kube-dns"
NAMESPACE = "kube-system"
LABELS = {"k8s-app": NAME, "app.kubernetes.io/name": "kubeglobe-dns"}
PORT = 53

Manifest = dict[str, Any]


def dns_manifests(*, image: str, cluster_ip: str, domain: str = "cluster.local",
                  replicas: int = 2) -> list[Manifest]:
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}
    probe = {"tcpSocket": {"port": PORT}, "periodSeconds": 5, "timeoutSeconds": 2}
    pod = {
        "metadata": {"labels": LABELS},
        "spec": {
            "serviceAccountName": NAME,
            "dnsPolicy": "Default",  # its own lookups go to the node's resolvers
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"k8s-app": NAME}},
                    "topologyKey": "kubernetes.io/hostname"}}]}},
            "containers": [{
                "name": "dns",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["kubeglobe", "dns", "--domain", domain, "--port", str(PORT),
                            "--not-forward-to", cluster_ip],
                "ports": [{"name": "dns", "containerPort": PORT, "protocol": "UDP"},
                          {"name": "dns-tcp", "containerPort": PORT, "protocol": "TCP"}],
                "readinessProbe": {**probe, "initialDelaySeconds": 1},
                "livenessProbe": {**probe, "initialDelaySeconds": 10, "failureThreshold": 5},
                "resources": {"requests": {"cpu": "20m", "memory": "48Mi"},
                              "limits": {"memory": "160Mi"}},
            }],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"kubeglobe:{NAME}", "labels": LABELS},
         "rules": [{"apiGroups": [""], "resources": ["services", "endpoints"],
                    "verbs": ["list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"kubeglobe:{NAME}", "labels": LABELS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"kubeglobe:{NAME}"},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"k8s-app": NAME}},
                  "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": pod}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"k8s-app": NAME}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"clusterIP": cluster_ip, "selector": {"k8s-app": NAME},
                  "ports": [{"name": "dns", "port": PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": PORT, "protocol": "TCP"}]}},
    ]
