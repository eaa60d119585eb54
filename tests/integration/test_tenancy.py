"""Projects and platform roles on real clusters: propagation, enforcement, quota, drift."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubeglobe.hub.tokens import issue_token
from kubeglobe.local.images import DEMO_IMAGE
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Platform

TENANCY = [
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "Project", "metadata": {"name": "p1"},
     "spec": {"clusters": [{"name": "workload-1",
                            "quota": {"cpu": "4", "memory": "8Gi", "pods": 20}}]}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "Project", "metadata": {"name": "p2"},
     "spec": {"clusters": [{"name": "workload-1"}]}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
     "metadata": {"name": "p1-dev-w1"},
     "spec": {"project": "p1", "cluster": "workload-1", "namespace": "p1-dev",
              "podSecurity": "baseline",
              "quota": {"cpu": "2", "memory": "2Gi", "pods": 10},
              "limits": {"defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                         "default": {"cpu": "200m", "memory": "128Mi"}}}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
     "metadata": {"name": "p2-dev-w1"},
     "spec": {"project": "p2", "cluster": "workload-1", "namespace": "p2-dev"}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "PlatformRoleBinding",
     "metadata": {"name": "alice-dev-p1"},
     "spec": {"role": "developer", "subject": {"kind": "User", "name": "alice"},
              "scope": {"project": "p1"}}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "PlatformRoleBinding",
     "metadata": {"name": "carol-audit"},
     "spec": {"role": "platform-auditor", "subject": {"kind": "User", "name": "carol"}}},
]


def _apply(platform: Platform, docs: list[dict[str, Any]]) -> None:
    platform.env.kubectl(GLOBAL, "apply", "-f", "-",
                         stdin="\n".join(json.dumps(d) for d in docs))


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s")


def _on_w1(platform: Platform, *args: str) -> str:
    done = platform.env.kubectl("workload-1", *args, check=False)
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="module")
def tenancy(platform: Platform) -> Platform:
    _apply(platform, TENANCY)
    _eventually(lambda: bool(_on_w1(platform, "-n", "p1-dev", "get", "rolebindings", "-o",
                                    "name")), 60, "project p1 on workload-1")
    return platform


def _user_kubeconfig(platform: Platform, user: str, cluster: str = "workload-1") -> Any:
    issued = issue_token(user=user, groups=())
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))
    return platform.proxy_kubeconfig(cluster, token=issued.token)


def test_project_namespace_lands_with_labels_quota_limits_and_rbac(tenancy: Platform) -> None:
    labels = json.loads(_on_w1(tenancy, "get", "ns", "p1-dev", "-o",
                               "jsonpath={.metadata.labels}"))
    assert labels["kubeglobe.io/project"] == "p1"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    hard = json.loads(_on_w1(tenancy, "-n", "p1-dev", "get", "resourcequota",
                             "kubeglobe-project-quota", "-o", "jsonpath={.spec.hard}"))
    assert hard == {"requests.cpu": "2", "requests.memory": "2Gi", "pods": "10"}
    assert _on_w1(tenancy, "-n", "p1-dev", "get", "limitrange", "kubeglobe-defaults", "-o",
                  "name")
    status = json.loads(tenancy.env.kubectl(GLOBAL, "get", "projectnamespace", "p1-dev-w1",
                                            "-o", "jsonpath={.status}").stdout)
    assert status["phase"] == "Accepted"
    # Pruning touches only tenancy's own objects: the agent keeps its rights.
    time.sleep(6)
    assert tenancy.env.kubectl("workload-2", "get", "clusterrolebinding", "kubeglobe-agent",
                               "-o", "name").stdout.strip()
    assert tenancy.cluster("workload-2")["status"]["phase"] == "Ready"


def test_developer_works_in_her_project_only(tenancy: Platform) -> None:
    alice = _user_kubeconfig(tenancy, "alice")
    tenancy.kubectl(alice, "-n", "p1-dev", "create", "deployment", "web",
                    f"--image={DEMO_IMAGE}")
    tenancy.kubectl(alice, "-n", "p1-dev", "wait", "deployment/web",
                    "--for=condition=Available", "--timeout=120s")
    other = tenancy.kubectl(alice, "-n", "p2-dev", "get", "pods", check=False)
    assert other.returncode != 0 and 'User "alice" cannot list' in other.stderr
    alice_b = _user_kubeconfig(tenancy, "alice", cluster="workload-2")
    elsewhere = tenancy.kubectl(alice_b, "-n", "default", "get", "pods", check=False)
    assert elsewhere.returncode != 0 and 'User "alice" cannot list' in elsewhere.stderr


def test_auditor_reads_but_cannot_write(tenancy: Platform) -> None:
    carol = _user_kubeconfig(tenancy, "carol")
    assert "deployment.apps/web" in tenancy.kubectl(carol, "-n", "p1-dev", "get",
                                                    "deployments", "-o", "name").stdout
    write = tenancy.kubectl(carol, "-n", "p1-dev", "create", "configmap", "nope",
                            check=False)
    assert write.returncode != 0 and "forbidden" in write.stderr


def test_over_quota_namespace_is_refused_with_the_numbers(tenancy: Platform) -> None:
    _apply(tenancy, [{"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
                      "metadata": {"name": "p1-big-w1"},
                      "spec": {"project": "p1", "cluster": "workload-1", "namespace": "p1-big",
                               "quota": {"cpu": "3", "memory": "1Gi", "pods": 1}}}])

    def rejected() -> bool:
        got = tenancy.env.kubectl(GLOBAL, "get", "projectnamespace", "p1-big-w1", "-o",
                                  "jsonpath={.status.phase}").stdout
        return got == "Rejected"

    _eventually(rejected, 30, "p1-big rejected")
    message = tenancy.env.kubectl(GLOBAL, "get", "projectnamespace", "p1-big-w1", "-o",
                                  "jsonpath={.status.message}").stdout
    assert "asks 3, project p1 allows 4 on workload-1" in message
    assert "at most 2 is left" in message
    assert not _on_w1(tenancy, "get", "ns", "p1-big", "-o", "name")


def test_drift_is_repaired_and_recorded(tenancy: Platform) -> None:
    tenancy.env.kubectl("workload-1", "-n", "p1-dev", "delete", "resourcequota",
                        "kubeglobe-project-quota")
    tenancy.env.kubectl("workload-1", "label", "ns", "p1-dev", "kubeglobe.io/project=x",
                        "--overwrite")
    bindings = _on_w1(tenancy, "-n", "p1-dev", "get", "rolebindings", "-o", "name").split()
    tenancy.env.kubectl("workload-1", "-n", "p1-dev", "delete", *bindings)

    def repaired() -> bool:
        label = _on_w1(tenancy, "get", "ns", "p1-dev", "-o",
                       "jsonpath={.metadata.labels.kubeglobe\\.io/project}")
        quota = _on_w1(tenancy, "-n", "p1-dev", "get", "resourcequota", "-o", "name")
        rbs = _on_w1(tenancy, "-n", "p1-dev", "get", "rolebindings", "-o", "name").split()
        return label == "p1" and bool(quota) and sorted(rbs) == sorted(bindings)

    took = _eventually(repaired, 30, "drift repair")
    print(f"drift repaired after {took:.1f}s")
    events = tenancy.env.kubectl(GLOBAL, "-n", "default", "get", "events",
                                 "--field-selector", "reason=DriftRepaired", "-o",
                                 "jsonpath={range .items[*]}{.message}{'\\n'}{end}").stdout
    assert "Repaired Namespace p1-dev on cluster workload-1: it had been changed" in events
    assert "ResourceQuota p1-dev/kubeglobe-project-quota on cluster workload-1: it had been " \
           "deleted" in events
