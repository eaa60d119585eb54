"""Cluster DNS in every cluster: pods resolve Services by name (ClusterIP, headless, the
search path), a missing name is NXDOMAIN, and kubelets hand pods the DNS address."""

from __future__ import annotations

import pytest

from kubeglobe.local.images import DEMO_IMAGE
from tests.integration.conftest import Env

NS = "dns-test"
OBJECTS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {NS}, labels: {{app: web}}}}
spec:
  containers:
  - name: httpd
    image: {DEMO_IMAGE}
    imagePullPolicy: IfNotPresent
    readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {NS}}}
spec:
  containers:
  - name: sh
    image: {DEMO_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-h, namespace: {NS}}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{name: http, port: 8080}}]
"""


def _in_client(env: Env, cluster: str, *argv: str, check: bool = True) -> str:
    done = env.kubectl(cluster, "-n", NS, "exec", "client", "--", *argv, check=check,
                       timeout=60)
    return done.stdout + done.stderr


def _lookup(env: Env, cluster: str, name: str) -> str:
    """busybox nslookup's output (its exit status says whether *every* name of the search
    path resolved, so it is not the answer: the output is)."""
    return _in_client(env, cluster, "nslookup", name, check=False)


@pytest.mark.parametrize("cluster", ["global", "workload-1"])
def test_pods_resolve_services_by_name(env: Env, cluster: str) -> None:
    plan = env.plan.cluster(cluster)
    env.kubectl(cluster, "apply", "-f", "-", stdin=OBJECTS)
    try:
        env.kubectl(cluster, "-n", NS, "wait", "pod/web", "pod/client",
                    "--for=condition=Ready", "--timeout=120s", timeout=150)
        resolv = _in_client(env, cluster, "cat", "/etc/resolv.conf")
        assert f"nameserver {plan.dns_service_ip}" in resolv
        assert f"search {NS}.svc.cluster.local svc.cluster.local cluster.local" in resolv
        events = env.kubectl(cluster, "-n", NS, "get", "events", "--field-selector",
                             "reason=MissingClusterDNS", "-o", "name").stdout
        assert events.strip() == ""

        found = _lookup(env, cluster, "kubernetes.default.svc.cluster.local")
        assert f"Address: {plan.kubernetes_service_ip}" in found, found
        cluster_ip = env.kubectl(cluster, "-n", NS, "get", "service", "web", "-o",
                                 "jsonpath={.spec.clusterIP}").stdout
        # a short name through the search path (busybox tries each, printing each)
        short = _lookup(env, cluster, "web")
        assert f"Name:\tweb.{NS}.svc.cluster.local\nAddress: {cluster_ip}" in short, short
        pod_ip = env.kubectl(cluster, "-n", NS, "get", "pod", "web", "-o",
                             "jsonpath={.status.podIP}").stdout
        headless = _lookup(env, cluster, f"web-h.{NS}.svc.cluster.local")
        assert f"Address: {pod_ip}" in headless and cluster_ip not in headless
        missing = _lookup(env, cluster, f"nope.{NS}.svc.cluster.local")
        assert "NXDOMAIN" in missing and "Name:" not in missing, missing
        # end to end: the name, the Service's address, kube-proxy, the pod
        page = _in_client(env, cluster, "wget", "-q", "-O", "-", "http://web/")
        assert "KubeGlobe demo" in page
    finally:
        env.kubectl(cluster, "delete", "namespace", NS, "--wait=false", check=False)
