import pytest
from pydantic import ValidationError

from kubeglobe.api.tenancy import (
    PlatformRoleBindingSpec,
    ProjectNamespaceSpec,
    ProjectSpec,
    Quota,
)
from kubeglobe.hub.tenancy.namespaces import namespace_objects
from kubeglobe.hub.tenancy.quota import QuotaExceeded, Sibling, check_namespace_fits
from kubeglobe.hub.tenancy.rbac import AUDITOR_ROLE, NamedBinding, NamedNamespace, cluster_rbac

PROJECT = ProjectSpec.model_validate({"clusters": [
    {"name": "a", "quota": {"cpu": "4", "memory": "8Gi", "pods": 20}},
    {"name": "b"},
]})


def ns(name: str, cluster: str = "a", **quota: object) -> ProjectNamespaceSpec:
    return ProjectNamespaceSpec.model_validate(
        {"project": "p1", "cluster": cluster, "namespace": name, "quota": quota})


def test_namespace_name_must_carry_the_project_prefix() -> None:
    with pytest.raises(ValidationError, match="must start with its project's name"):
        ns("dev")


def test_bad_quantities_are_named() -> None:
    with pytest.raises(ValidationError, match="cpu 'lots' is not a quantity"):
        Quota(cpu="lots")


def test_namespace_fits_while_the_sum_stays_within_the_project() -> None:
    siblings = [Sibling("p1-a", Quota(cpu="1", memory="2Gi", pods=5)),
                Sibling("p1-b", Quota(cpu="1500m", memory="2Gi", pods=5))]
    check_namespace_fits(name="p1-c", spec=ns("p1-c", cpu="1500m", memory="4Gi", pods=10),
                         project=PROJECT, siblings=siblings)


def test_over_quota_is_refused_with_the_numbers() -> None:
    siblings = [Sibling("p1-a", Quota(cpu="1", memory="1Gi", pods=1)),
                Sibling("p1-b", Quota(cpu="2", memory="1Gi", pods=1))]
    with pytest.raises(QuotaExceeded) as e:
        check_namespace_fits(name="p1-c", spec=ns("p1-c", cpu="2", memory="1Gi", pods=1),
                             project=PROJECT, siblings=siblings)
    text = str(e.value)
    assert "cpu: asks 2, project p1 allows 4 on a" in text
    assert "other namespaces hold 3 (p1-a 1, p1-b 2)" in text
    assert "at most 1 is left" in text


def test_resizing_a_namespace_does_not_count_itself_twice() -> None:
    siblings = [Sibling("p1-c", Quota(cpu="3", memory="1Gi", pods=1))]
    check_namespace_fits(name="p1-c", spec=ns("p1-c", cpu="4", memory="1Gi", pods=1),
                         project=PROJECT, siblings=siblings)


def test_unlimited_namespace_in_a_limited_project_is_refused() -> None:
    with pytest.raises(QuotaExceeded, match="needs a cpu quota"):
        check_namespace_fits(name="p1-c", spec=ns("p1-c", memory="1Gi", pods=1),
                             project=PROJECT, siblings=[])


def test_unlimited_cluster_and_unknown_cluster() -> None:
    check_namespace_fits(name="p1-x", spec=ns("p1-x", cluster="b"), project=PROJECT,
                         siblings=[])
    with pytest.raises(QuotaExceeded, match="does not include cluster c"):
        check_namespace_fits(name="p1-x", spec=ns("p1-x", cluster="c"), project=PROJECT,
                             siblings=[])


def test_namespace_objects_carry_labels_quota_and_defaults() -> None:
    spec = ProjectNamespaceSpec.model_validate({
        "project": "p1", "cluster": "a", "namespace": "p1-dev", "podSecurity": "restricted",
        "quota": {"cpu": "2", "pods": 10},
        "limits": {"defaultRequest": {"cpu": "100m"}, "default": {"cpu": "500m"}}})
    kinds = {o["kind"]: o for o in namespace_objects(spec)}
    assert kinds["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted")
    assert kinds["Namespace"]["metadata"]["labels"]["kubeglobe.io/project"] == "p1"
    assert kinds["ResourceQuota"]["spec"]["hard"] == {"requests.cpu": "2", "pods": "10"}
    assert kinds["LimitRange"]["spec"]["limits"][0]["defaultRequest"] == {"cpu": "100m"}
    bare = namespace_objects(ProjectNamespaceSpec.model_validate(
        {"project": "p1", "cluster": "a", "namespace": "p1-x"}))
    assert [o["kind"] for o in bare] == ["Namespace"]


def binding(name: str, role: str, kind: str = "User", who: str = "alice",
            **scope: str) -> NamedBinding:
    return NamedBinding(name, PlatformRoleBindingSpec.model_validate(
        {"role": role, "subject": {"kind": kind, "name": who}, "scope": scope}))


def test_role_scopes_are_enforced() -> None:
    with pytest.raises(ValidationError, match="platform-admin is bound at platform scope"):
        binding("x", "platform-admin", project="p1")
    with pytest.raises(ValidationError, match="project-admin is bound at project scope"):
        binding("x", "project-admin")
    with pytest.raises(ValidationError, match="not both"):
        binding("x", "developer", project="p1", namespace="n")


def test_cluster_rbac_maps_roles_to_native_rbac_on_the_right_cluster() -> None:
    namespaces = [NamedNamespace("p1-dev-a", ns("p1-dev")), NamedNamespace("p1-ops-a",
                  ns("p1-ops")), NamedNamespace("p1-dev-b", ns("p1-dev", cluster="b"))]
    bindings = [binding("admins", "platform-admin", kind="Group", who="ops"),
                binding("audit", "platform-auditor", who="carol"),
                binding("alice-dev", "developer", project="p1"),
                binding("bob-view", "viewer", who="bob", namespace="p1-ops-a")]
    objects = cluster_rbac(cluster="a", bindings=bindings, namespaces=namespaces)
    assert objects[0]["metadata"]["name"] == AUDITOR_ROLE
    crbs = {o["roleRef"]["name"]: o for o in objects if o["kind"] == "ClusterRoleBinding"}
    assert crbs["cluster-admin"]["subjects"][0] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}
    assert crbs[AUDITOR_ROLE]["subjects"][0]["name"] == "carol"
    rbs = [(o["metadata"]["namespace"], o["roleRef"]["name"], o["subjects"][0]["name"])
           for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(rbs) == [("p1-dev", "edit", "alice"), ("p1-ops", "edit", "alice"),
                           ("p1-ops", "view", "bob")]
    on_b = cluster_rbac(cluster="b", bindings=bindings, namespaces=namespaces)
    assert sorted((o["metadata"].get("namespace"), o["roleRef"]["name"])
                  for o in on_b if o["kind"] == "RoleBinding") == [("p1-dev", "edit")]
    assert cluster_rbac(cluster="a", bindings=bindings, namespaces=namespaces) == objects


def test_every_tenancy_object_carries_the_prune_label() -> None:
    spec = ProjectNamespaceSpec.model_validate({
        "project": "p1", "cluster": "a", "namespace": "p1-dev", "quota": {"cpu": "1"},
        "limits": {"default": {"cpu": "1"}}})
    objects = namespace_objects(spec) + cluster_rbac(
        cluster="a", bindings=[binding("b", "platform-auditor")],
        namespaces=[NamedNamespace("n", spec)])
    assert objects and all(
        o["metadata"]["labels"]["kubeglobe.io/tenancy"] == "true" for o in objects)


def test_a_poke_wakes_every_waiting_loop() -> None:
    import asyncio

    from kubeglobe.hub.tenancy.handlers import Wakeups

    async def scenario() -> list[bool]:
        wakeups = Wakeups()
        a, b = wakeups.register(), wakeups.register()
        wakeups.unregister(b)
        wakeups.poke()
        return [a.is_set(), b.is_set()]

    assert asyncio.run(scenario()) == [True, False]


def test_desired_objects_become_lightkube_objects_that_read_back_without_drift() -> None:
    from lightkube import codecs

    from kubeglobe.hub.tenancy.desired import RESOURCES, desired_objects, drifted

    spec = ProjectNamespaceSpec.model_validate({
        "project": "p1", "cluster": "a", "namespace": "p1-dev", "quota": {"cpu": "1"},
        "limits": {"default": {"cpu": "1"}}})
    objects = desired_objects(
        cluster="a", namespaces=[NamedNamespace("p1-dev-a", spec)],
        bindings=[binding("audit", "platform-auditor"), binding("dev", "developer",
                                                                project="p1")])
    assert {o["kind"] for o in objects} == set(RESOURCES)
    for obj in objects:
        resource = codecs.from_dict(obj)
        assert type(resource) is RESOURCES[obj["kind"]]
        # what a list of the cluster gives back (lightkube objects) is what was applied
        assert not drifted(obj, resource.to_dict())  # type: ignore[attr-defined]


def test_desired_objects_are_ordered_and_only_for_their_cluster() -> None:
    from kubeglobe.hub.tenancy.desired import apply_phase, desired_objects

    objects = desired_objects(
        cluster="a", namespaces=[NamedNamespace("x", ns("p1-x", cpu="1")),
                                 NamedNamespace("y", ns("p1-y", cluster="b"))],
        bindings=[binding("dev", "developer", project="p1"),
                  binding("audit", "platform-auditor")])
    phases = [apply_phase(o) for o in objects]
    assert phases == sorted(phases)
    assert [o["kind"] for o in objects][:2] == ["Namespace", "ClusterRole"]
    assert {o["metadata"].get("namespace") for o in objects} == {None, "p1-x"}


def test_drift_is_a_lost_or_changed_field_of_ours_not_an_added_one() -> None:
    from kubeglobe.hub.tenancy.desired import drifted

    want = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "p1-dev", "labels": {"kubeglobe.io/project": "p1"}}}
    have = {"metadata": {"name": "p1-dev", "uid": "u", "labels": {
        "kubeglobe.io/project": "p1", "team": "x"}}, "status": {"phase": "Active"}}
    assert not drifted(want, have)
    assert drifted(want, None)
    assert drifted(want, {"metadata": {"name": "p1-dev", "labels": {
        "kubeglobe.io/project": "x"}}})
    rule = {"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]}
    assert drifted(rule, {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"]},
                                                               {"verbs": ["list"]}]})


def test_workloads_are_described_in_words() -> None:
    from kubeglobe.hub.tenancy.workloads import describe_workloads, forced

    assert describe_workloads({"pods": 2, "deployments": 1}) == "1 deployment, 2 pods"
    assert forced({"kubeglobe.io/force-delete": "True"}) and not forced(None)


@pytest.mark.parametrize("value", [True, False])
def test_a_count_is_never_a_boolean(value: bool) -> None:
    """pydantic takes true as 1; a person never means a count by it (the API fuzzer
    sent `pods: false` and it was accepted)."""
    with pytest.raises(ValidationError, match="must be a whole number"):
        Quota.model_validate({"pods": value})
    assert Quota.model_validate({"pods": 3}).pods == 3
    schema = Quota.model_json_schema()["properties"]["pods"]["anyOf"][0]
    assert schema == {"type": "integer", "minimum": 0}  # what the CRD says too
