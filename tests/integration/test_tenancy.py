"""Projects and platform roles on real clusters: propagation, enforcement, quota, drift."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kubeglobe.hub.tokens import issue_token
from kubeglobe.local.images import DEMO_IMAGE
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Platform, until

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


def _on_w1(platform: Platform, *args: str) -> str:
    done = platform.env.kubectl("workload-1", *args, check=False)
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="module")
def tenancy(platform: Platform) -> Platform:
    _apply(platform, TENANCY)
    until(lambda: bool(_on_w1(platform, "-n", "p1-dev", "get", "rolebindings", "-o", "name")),
          60, every=0.5, what="project p1 on workload-1")
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
    big = {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
           "metadata": {"name": "p1-big-w1"},
           "spec": {"project": "p1", "cluster": "workload-1", "namespace": "p1-big",
                    "quota": {"cpu": "3", "memory": "1Gi", "pods": 1}}}
    refused = tenancy.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(big),
                                  check=False)
    assert refused.returncode != 0
    assert "asks 3, project p1 allows 4 on workload-1" in refused.stderr
    assert "at most 2 is left" in refused.stderr
    assert not tenancy.env.kubectl(GLOBAL, "get", "projectnamespace", "p1-big-w1",
                                   check=False).stdout
    # the same rule, the same words, through the CLI (REST)
    cli = tenancy.cli("namespace", "create", "p1-big", "--project", "p1", "--cluster",
                      "workload-1", "--quota", "cpu=3", "--quota", "memory=1Gi",
                      "--quota", "pods=1", check=False)
    assert cli.returncode == 2
    assert "at most 2 is left" in cli.stderr.replace("\n", " ")
    # what fits is accepted, and a project quota cannot shrink below what is handed out
    tenancy.cli("namespace", "create", "p1-small", "--project", "p1", "--cluster",
                "workload-1", "--quota", "cpu=1", "--quota", "memory=1Gi", "--quota", "pods=1")
    shrink = tenancy.cli("project", "update", "p1", "--cluster",
                         "workload-1:cpu=2,memory=8Gi,pods=20", check=False)
    assert shrink.returncode == 2 and "hold 3, more than 2" in shrink.stderr.replace("\n", " ")
    tenancy.cli("namespace", "delete", "p1-small-workload-1")
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

    took = until(repaired, 30, every=0.5, what="drift repair")
    print(f"drift repaired after {took:.1f}s")
    events = tenancy.env.kubectl(GLOBAL, "-n", "default", "get", "events",
                                 "--field-selector", "reason=DriftRepaired", "-o",
                                 "jsonpath={range .items[*]}{.message}{'\\n'}{end}").stdout
    assert "Repaired Namespace p1-dev on cluster workload-1: it had been changed" in events
    assert "ResourceQuota p1-dev/kubeglobe-project-quota on cluster workload-1: it had been " \
           "deleted" in events


def test_namespaces_holding_workloads_are_removed_only_when_forced(tenancy: Platform) -> None:
    # p1-dev holds alice's Deployment `web` (test_developer_works_in_her_project_only)
    refused = tenancy.cli("namespace", "delete", "p1-dev-w1", check=False)
    said = refused.stderr.replace("\n", " ")
    assert refused.returncode == 2 and "p1-dev on workload-1 holds 1 deployment" in said
    by_kubectl = tenancy.env.kubectl(GLOBAL, "delete", "project", "p1", check=False)
    assert by_kubectl.returncode != 0 and "still hold workloads" in by_kubectl.stderr
    assert _on_w1(tenancy, "get", "ns", "p1-dev", "-o", "name")

    def gone_from_w1(namespace: str) -> bool:
        phase = _on_w1(tenancy, "get", "ns", namespace, "-o", "jsonpath={.status.phase}")
        return phase in ("", "Terminating")

    # taking workload-1 out of p2 removes p2's (empty) namespace there
    tenancy.cli("project", "update", "p2")
    until(lambda: gone_from_w1("p2-dev"), 60, every=0.5, what="p2-dev removed from workload-1")
    until(lambda: not tenancy.env.kubectl(GLOBAL, "get", "projectnamespace", "p2-dev-w1",
                                          check=False).stdout,
          30, every=0.5, what="p2-dev-w1 finalized")
    # forced: the project goes with its namespace and the workloads in it
    tenancy.cli("project", "delete", "p1", "--force")
    until(lambda: gone_from_w1("p1-dev"), 60, every=0.5, what="p1-dev removed from workload-1")
    until(lambda: not tenancy.env.kubectl(GLOBAL, "get", "project", "p1", check=False).stdout,
          60, every=0.5, what="p1 finalized")
