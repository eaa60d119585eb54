"""The admission rules for tenancy resources (pure)."""

import pytest

from kubeglobe.api.tenancy import ProjectNamespaceSpec, ProjectSpec
from kubeglobe.hub.tenancy.admission import (
    Denied,
    NamespaceEntry,
    check_namespace,
    check_project,
    namespaces_to_check,
    spec_changed,
    spec_of,
)

PROJECT = ProjectSpec.model_validate({"clusters": [{"name": "w1", "quota": {"cpu": "4"}},
                                                   {"name": "w2"}]})


def _ns(name: str, namespace: str, cpu: str | None, cluster: str = "w1",
        rejected: bool = False, deleting: bool = False) -> NamespaceEntry:
    quota = {"cpu": cpu} if cpu else {}
    return NamespaceEntry(name=name, spec=ProjectNamespaceSpec.model_validate(
        {"project": "p1", "cluster": cluster, "namespace": namespace, "quota": quota}),
        rejected=rejected, deleting=deleting)


def test_namespace_quota_must_fit_with_the_numbers() -> None:
    others = [_ns("a", "p1-a", "2"), _ns("gone", "p1-gone", "2", deleting=True),
              _ns("bad", "p1-bad", "9", rejected=True)]
    fits = _ns("b", "p1-b", "2")
    check_namespace("b", fits.spec, project=PROJECT, others=others)
    big = _ns("c", "p1-c", "3")
    with pytest.raises(Denied, match=r"asks 3, project p1 allows 4 on w1 .* hold 2 .* at most 2"):
        check_namespace("c", big.spec, project=PROJECT, others=others)
    with pytest.raises(Denied, match="does not exist"):
        check_namespace("b", fits.spec, project=None, others=others)
    clash = _ns("d", "p1-a", "1")
    with pytest.raises(Denied, match="already belongs to project namespace a"):
        check_namespace("d", clash.spec, project=PROJECT, others=others)


def test_project_quota_cannot_drop_below_what_namespaces_hold() -> None:
    others = [_ns("a", "p1-a", "2"), _ns("b", "p1-b", "1")]
    check_project("p1", PROJECT, others=others)
    smaller = ProjectSpec.model_validate({"clusters": [{"name": "w1", "quota": {"cpu": "2"}}]})
    with pytest.raises(Denied, match=r"hold 3, more than 2"):
        check_project("p1", smaller, others=others)


def test_invalid_specs_are_denied_with_the_reason() -> None:
    with pytest.raises(Denied, match="must start with its project"):
        spec_of("ProjectNamespace", {"metadata": {"name": "x"}, "spec": {
            "project": "p1", "cluster": "w1", "namespace": "dev"}})
    with pytest.raises(Denied, match="bound at platform scope"):
        spec_of("PlatformRoleBinding", {"metadata": {"name": "x"}, "spec": {
            "role": "platform-admin", "subject": {"kind": "User", "name": "a"},
            "scope": {"project": "p1"}}})


def test_only_spec_changes_are_checked() -> None:
    obj = {"metadata": {"name": "a"}, "spec": {"x": 1}}
    assert spec_changed("CREATE", obj, None)
    assert not spec_changed("UPDATE", obj, {"metadata": {}, "spec": {"x": 1}})
    assert spec_changed("UPDATE", obj, {"metadata": {}, "spec": {"x": 2}})
    deleting = {"metadata": {"name": "a", "deletionTimestamp": "t"}, "spec": {"x": 3}}
    assert not spec_changed("UPDATE", deleting, obj)


def test_deletions_that_remove_namespaces_are_checked_unless_forced() -> None:
    entries = [_ns("a", "p1-a", "1"), _ns("b", "p1-b", None, cluster="w2"),
               _ns("r", "p1-r", "9", rejected=True)]
    project = {"metadata": {"name": "p1"}, "spec": {"clusters": [{"name": "w1"},
                                                                 {"name": "w2"}]}}
    assert [e.name for e in namespaces_to_check("Project", "DELETE", {}, project, entries)] == [
        "a", "b"]
    shrunk = {"metadata": {"name": "p1"}, "spec": {"clusters": [{"name": "w1"}]}}
    assert [e.name for e in namespaces_to_check("Project", "UPDATE", shrunk, project,
                                                entries)] == ["b"]
    pns = {"metadata": {"name": "a"}}
    assert [e.name for e in namespaces_to_check("ProjectNamespace", "DELETE", {}, pns,
                                                entries)] == ["a"]
    forced = {"metadata": {"name": "a", "annotations": {"kubeglobe.io/force-delete": "true"}}}
    assert namespaces_to_check("ProjectNamespace", "DELETE", {}, forced, entries) == []
