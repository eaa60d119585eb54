"""Real containers on every workload cluster: a Deployment serves HTTP, logs work."""

from __future__ import annotations

import time

import httpx
import pytest

from kubeglobe.local.images import DEMO_IMAGE
from tests.integration.conftest import Env

DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: httpd
        image: {DEMO_IMAGE}
        imagePullPolicy: IfNotPresent
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 2
"""


@pytest.mark.parametrize("cluster", ["workload-1", "workload-2"])
def test_deployment_serves_http_and_logs(env: Env, cluster: str) -> None:
    env.kubectl(cluster, "apply", "-f", "-", stdin=DEPLOYMENT)
    env.kubectl(cluster, "wait", "deployment/web", "--for=condition=Available",
                "--timeout=180s", timeout=200)
    ready = env.kubectl(cluster, "get", "deployment", "web",
                        "-o", "jsonpath={.status.readyReplicas}").stdout
    assert ready == "2"
    pods = env.kubectl(cluster, "get", "pods", "-l", "app=web", "-o",
                       "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{'\\n'}{end}"
                       ).stdout.split("\n")
    pods = [p for p in pods if p]
    assert len(pods) == 2
    name, ip = pods[0].split()
    node = env.plan.cluster(cluster).nodes[0]
    assert ip.startswith(node.pod_cidr.rsplit(".", 2)[0])
    with httpx.Client(trust_env=False, timeout=5) as http:
        answer = http.get(f"http://{ip}:8080/")
    assert answer.status_code == 200 and "KubeGlobe demo" in answer.text
    restarts = env.kubectl(cluster, "get", "pod", name, "-o",
                           "jsonpath={.status.containerStatuses[0].restartCount}").stdout
    assert restarts == "0"
    deadline = time.monotonic() + 20
    logs = ""
    while time.monotonic() < deadline and "serving /www on :8080" not in logs:
        logs = env.kubectl(cluster, "logs", name).stdout
        time.sleep(1)
    assert "serving /www on :8080" in logs, logs
