"""The platform installed onto a cluster someone already runs (workload-1 of the
environment, standing in for it): `kubeglobe install --image` puts the same platform
there as pods, its API answers as the installed admin, and a second install changes
nothing. The installation is removed afterwards, so workload-1 is as it was."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Env, until

CLUSTER = "workload-1"
NS = "kubeglobe-system"


def _install(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubeglobe.cli.main", "install",
         "--kubeconfig", str(env.kubeconfig(CLUSTER)), *args],
        capture_output=True, text=True, timeout=420, env={**os.environ, "COLUMNS": "200"})


def _pods(env: Env) -> set[str]:
    got = json.loads(env.kubectl(CLUSTER, "-n", NS, "get", "pods", "-o", "json").stdout)
    return {p["metadata"]["name"] for p in got["items"]}


def _uninstall(env: Env) -> None:
    for kind, name in (("validatingwebhookconfiguration", "kubeglobe-tenancy"),
                       *(("clusterrolebinding", n) for n in ("kubeglobe-controller",
                                                             "kubeglobe-server",
                                                             "kubeglobe-gateway")),
                       *(("clusterrole", n) for n in ("kubeglobe-controller",
                                                      "kubeglobe-server",
                                                      "kubeglobe-gateway"))):
        env.kubectl(CLUSTER, "delete", kind, name, "--ignore-not-found")
    env.kubectl(CLUSTER, "delete", "namespace", NS, "--ignore-not-found", timeout=180)
    crds = json.loads(env.kubectl(CLUSTER, "get", "crd", "-o", "json").stdout)["items"]
    for crd in crds:
        if crd["spec"]["group"] == "kubeglobe.io":
            env.kubectl(CLUSTER, "delete", "crd", crd["metadata"]["name"])


def test_the_platform_installs_onto_an_existing_cluster(env: Env, tmp_path: Path) -> None:
    image = json.loads(env.kubectl(GLOBAL, "-n", NS, "get", "daemonset", "kubeglobe-gateway",
                                   "-o", "json").stdout)["spec"]["template"]["spec"][
        "containers"][0]["image"]
    node = env.plan.cluster(CLUSTER).nodes[0]
    args = ("--image", image, "--endpoint", node.ip, "--pki-dir", str(tmp_path / "pki"),
            "--gateway-nodes", f"kubernetes.io/hostname={node.name}")
    try:
        done = _install(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        found = re.search(r"bootstrap admin token \(shown once\): (kg_\S+)", done.stdout)
        assert found, done.stdout
        token = found.group(1)
        url = f"https://{node.ip}:8443"
        assert url in done.stdout
        ca = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.crt"))
        with httpx.Client(base_url=url, verify=ca, trust_env=False, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            until(lambda: api.get("/readyz").status_code == 200, 60, every=1,
                  what="the installed platform's API")
            me = api.get("/api/v1/whoami")
            assert me.status_code == 200, me.text
            assert "kubeglobe:platform-admins" in me.text
            clusters = api.get("/api/v1/clusters")
            assert clusters.status_code == 200 and clusters.json()["items"] == []
            # the admission webhook of this installation answers its cluster's writes
            refused = env.kubectl(CLUSTER, "apply", "-f", "-", check=False, stdin=json.dumps({
                "apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
                "metadata": {"name": "no-project"},
                "spec": {"project": "nothing-here", "cluster": "nowhere",
                         "namespace": "nothing-here-a"}}))
            assert refused.returncode != 0
            assert "project nothing-here does not exist" in refused.stderr
        pods = _pods(env)
        assert len(pods) == 5  # a gateway on the one node, two controllers, two servers
        again = _install(env, *args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "shown once" not in again.stdout  # the admin token is made once
        assert _pods(env) == pods  # nothing changed, nothing restarted
    finally:
        _uninstall(env)
    assert NS not in env.kubectl(CLUSTER, "get", "namespaces").stdout


def test_install_refuses_an_image_without_an_endpoint_by_name(env: Env) -> None:
    done = _install(env, "--image", "kubeglobe.local/kubeglobe:x")
    assert done.returncode == 2
    assert "--image needs --endpoint" in done.stdout + done.stderr
    assert NS not in env.kubectl(CLUSTER, "get", "namespaces").stdout  # nothing applied
