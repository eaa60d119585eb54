"""The platform's objects as an ApplySet: ids, labels, the parent, what to prune."""

from __future__ import annotations

import pytest

from kubeglobe.deploy.applyset import (
    GROUP_KINDS,
    ID,
    KINDS,
    PART_OF,
    Member,
    applyset_id,
    kinds_listed,
    labelled,
    members,
    parent,
    to_prune,
)


def cm(name: str, namespace: str = "kubeglobe-system") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}}


def test_the_id_is_keps_hash_of_the_parent() -> None:
    # KEP-3659: base64url(sha256("<name>.<namespace>.<kind>.<group>")), unpadded
    assert applyset_id("kubeglobe", "kubeglobe-system") == applyset_id("kubeglobe",
                                                                       "kubeglobe-system")
    assert applyset_id("kubeglobe", "kubeglobe-system") != applyset_id("kubeglobe", "other")
    found = applyset_id("a", "b")
    assert found.startswith("applyset-") and found.endswith("-v1") and "=" not in found
    assert len(found) == len("applyset-") + 43 + len("-v1")


def test_members_are_labelled_without_changing_what_was_given() -> None:
    given = [cm("a")]
    out = labelled(given, "applyset-x-v1")
    assert out[0]["metadata"]["labels"] == {PART_OF: "applyset-x-v1"}  # type: ignore[index]
    assert "labels" not in given[0]["metadata"]  # type: ignore[operator]


def test_an_object_of_another_namespace_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ConfigMap 'b' is not in namespace 'kubeglobe-system'"):
        members([cm("a"), cm("b", "default")], "kubeglobe-system")


def test_the_parent_lists_every_kind_with_its_version() -> None:
    kinds = {("apps/v1", "Deployment"), ("v1", "Secret"), ("policy/v1beta1",
                                                         "PodDisruptionBudget")}
    p = parent("kubeglobe", "kubeglobe-system", kinds)
    meta = p["metadata"]
    assert meta["labels"] == {ID: applyset_id("kubeglobe", "kubeglobe-system")}
    assert meta["annotations"][GROUP_KINDS] == \
        "Deployment.apps,PodDisruptionBudget.policy,Secret"
    assert kinds_listed(meta["annotations"]) == kinds
    assert kinds_listed({KINDS: ""}) == set() and kinds_listed(None) == set()


def test_only_members_the_manifests_no_longer_have_are_pruned() -> None:
    wanted = members([cm("a"), cm("b")], "kubeglobe-system")
    found = [Member("v1", "ConfigMap", "a"), Member("v1", "ConfigMap", "old"),
             Member("apps/v1", "Deployment", "gone")]
    assert to_prune(found, wanted) == [Member("apps/v1", "Deployment", "gone"),
                                       Member("v1", "ConfigMap", "old")]
    assert to_prune(found[:1], wanted) == []
