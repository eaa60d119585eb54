"""The platform's objects are applied as an ApplySet: what a version no longer has is
pruned, and nothing outside the set is touched (against real global)."""

from __future__ import annotations

import json
import uuid

from kubeglobe.deploy.apply import apply_set
from kubeglobe.deploy.applyset import Member
from kubeglobe.kube.client import load_kubeconfig, sync_client
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Env


def _cm(name: str, namespace: str, value: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": {"v": value}}


def _names(env: Env, namespace: str, kind: str) -> set[str]:
    got = json.loads(env.kubectl(GLOBAL, "-n", namespace, "get", kind, "-o", "json").stdout)
    return {i["metadata"]["name"] for i in got["items"]}


def test_an_upgrade_prunes_what_the_new_version_no_longer_has(env: Env) -> None:
    namespace = f"kg-set-{uuid.uuid4().hex[:6]}"
    env.kubectl(GLOBAL, "create", "namespace", namespace)
    try:
        env.kubectl(GLOBAL, "-n", namespace, "create", "configmap", "bystander")
        with sync_client(load_kubeconfig(path=env.kubeconfig(GLOBAL))) as client:
            first = [_cm("a", namespace, "1"), _cm("b", namespace, "1")]
            assert apply_set(client, name="set", namespace=namespace, manifests=first) == []
            assert {"a", "b", "bystander", "set"} <= _names(env, namespace, "configmaps")
            secret = {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "c", "namespace": namespace},
                      "stringData": {"k": "v"}}
            second = [_cm("a", namespace, "2"), secret]
            pruned = apply_set(client, name="set", namespace=namespace, manifests=second)
            assert pruned == [Member("v1", "ConfigMap", "b")]
            assert apply_set(client, name="set", namespace=namespace, manifests=second) == []
            # a kind the set no longer has is pruned too (the parent remembered it)
            third = [_cm("a", namespace, "3")]
            assert apply_set(client, name="set", namespace=namespace,
                             manifests=third) == [Member("v1", "Secret", "c")]
        assert _names(env, namespace, "configmaps") >= {"a", "bystander", "set"}
        assert "b" not in _names(env, namespace, "configmaps")
        assert "c" not in _names(env, namespace, "secrets")
        parent = json.loads(env.kubectl(GLOBAL, "-n", namespace, "get", "configmap", "set",
                                        "-o", "json").stdout)
        assert parent["metadata"]["annotations"][
            "applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap"
    finally:
        env.kubectl(GLOBAL, "delete", "namespace", namespace, "--wait=false")
