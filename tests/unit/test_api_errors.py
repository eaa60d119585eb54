"""The API's errors are documented and named: every status an operation can answer is in
/openapi.json with the one error body, every name parameter carries its rule, and a
name that breaks its rule is refused with 422 saying which rule and what would pass,
before the global cluster is asked (the app here has no cluster at all)."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from kubeglobe.api.names import LABEL_PATTERN, SUBDOMAIN_PATTERN, name_problem, suggest
from kubeglobe.server.app import create_app
from kubeglobe.server.errors import describe_invalid, install_error_handlers

PROXY = "/clusters/{name}/k8s/{path}"  # documents the workload clusters' own answers
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(hub=cast(AsyncClient, object()))  # no route here may reach it


@pytest.fixture(scope="module")
def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    schema: dict[str, Any] = app.openapi()
    return [(method.upper(), path, op) for path, methods in schema["paths"].items()
            if path != PROXY for method, op in methods.items()]


def _body_schema(response: dict[str, Any]) -> Any:
    return (response.get("content") or {}).get("application/json", {}).get("schema")


def test_every_error_an_operation_answers_is_documented_with_the_one_error_body(
        operations: list[tuple[str, str, dict[str, Any]]]) -> None:
    wrong = [f"{method} {path} {status}: {_body_schema(response)}"
             for method, path, op in operations for status, response in op["responses"].items()
             if status.startswith(("4", "5")) and _body_schema(response) != ERROR_BODY
             and (method, path, status) != ("GET", "/readyz", "503")]  # readyz: its status
    assert wrong == []


def test_operations_document_401_403_404_422_where_they_can_occur(
        operations: list[tuple[str, str, dict[str, Any]]]) -> None:
    missing = []
    for method, path, op in operations:
        documented = set(op["responses"])
        needed = set()
        if path.startswith("/api/v1/"):
            needed |= {"401"}  # a token (a login, an agent credential) can be wrong
        if op.get("parameters") or op.get("requestBody"):
            needed |= {"422"}
        if op.get("requestBody"):
            needed |= {"400"}  # a body that is not JSON text
        writes = method != "GET" and path.startswith("/api/v1/") and not path.startswith(
            ("/api/v1/agent/", "/api/v1/login", "/api/v1/logout", "/api/v1/tokens"))
        if writes:
            needed |= {"403"}  # admins (or project admins) only
        if method in ("GET", "PUT", "PATCH") and "{name}" in path:
            needed |= {"404"}
        if not needed <= documented:
            missing.append(f"{method} {path}: {sorted(needed - documented)}")
    assert missing == []


def test_every_name_parameter_carries_its_rule(
        operations: list[tuple[str, str, dict[str, Any]]]) -> None:
    seen = 0
    for method, path, op in operations:
        for p in op.get("parameters", []):
            if p["name"] in ("name", "project", "cluster", "user", "X-KubeGlobe-Cluster"):
                schema = p["schema"]
                schema = next((s for s in schema.get("anyOf", []) if s.get("type") == "string"),
                              schema)
                assert schema.get("pattern") in (LABEL_PATTERN, SUBDOMAIN_PATTERN), (
                    f"{method} {path} {p['name']}: {schema}")
                assert schema["maxLength"] in (63, 253)
                seen += 1
    assert seen > 20


def test_an_invalid_name_is_refused_with_the_rule_and_a_fix_before_any_cluster_call(
        app: FastAPI) -> None:
    client = TestClient(app)
    answer = client.post("/api/v1/login", json={"username": "Jane_Doe", "password": "x"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("body field username: user name 'Jane_Doe' is not a valid "
                             "DNS-1123 label: ")
    assert "(e.g. 'jane-doe')" in detail
    answer = client.post("/api/v1/agent/register", json={
        "cluster": "x" * 64, "bootstrapToken": "t"})
    assert answer.status_code == 422
    assert "cluster name" in answer.json()["detail"] and "at most 63" in answer.json()["detail"]
    answer = client.get("/api/v1/agent/replicas", headers={"X-KubeGlobe-Cluster": "a.b"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(
        "header parameter X-KubeGlobe-Cluster: cluster name 'a.b' is not a valid DNS-1123 "
        "label")


def test_the_proxy_route_documents_its_status_refusals_and_its_name_rule(
        app: FastAPI) -> None:
    import asyncio

    from fastapi import HTTPException

    from kubeglobe.server.proxy import ClusterProxy

    for method, op in app.openapi()["paths"][PROXY].items():
        name = next(p for p in op["parameters"] if p["name"] == "name")
        assert name["schema"]["pattern"] == LABEL_PATTERN, method
        refusals = {code: _body_schema(r) for code, r in op["responses"].items()
                    if code.startswith(("4", "5"))}
        assert set(refusals) == {"401", "404", "422", "502", "503"}, method
        assert set(map(str, refusals.values())) == {
            "{'$ref': '#/components/schemas/KubeStatus'}"}, method
    proxy = ClusterProxy(access=cast(Any, object()), tunnels=cast(Any, object()))
    with pytest.raises(HTTPException) as refused:  # before the Cluster is looked up
        asyncio.run(proxy.spec("Bad_Name"))
    assert refused.value.status_code == 422
    assert str(refused.value.detail).startswith(
        "cluster name 'Bad_Name' is not a valid DNS-1123 label")


def test_bodies_that_are_not_json_are_refused_with_the_error_body(app: FastAPI) -> None:
    client = TestClient(app)
    answer = client.post("/api/v1/login", content=b"{nope", headers={
        "content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body: not valid JSON (")
    answer = client.post("/api/v1/login", content=b"\xe9t\xe9", headers={  # not UTF-8
        "content-type": "application/json"})
    assert answer.status_code == 400
    assert set(answer.json()) == {"detail"}


def test_the_admission_webhook_takes_a_typed_review(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.post("/admission/tenancy", json={"request": 5}).status_code == 422
    missing_uid = client.post("/admission/tenancy", json={"request": {"operation": "CREATE"}})
    assert missing_uid.status_code == 422
    assert "body field request.uid: Field required" in missing_uid.json()["detail"]
    other_kind = client.post("/admission/tenancy", json={"request": {
        "uid": "u1", "operation": "CREATE", "kind": {"kind": "ConfigMap"},
        "object": {"metadata": {"name": "x"}}}})
    assert other_kind.status_code == 200
    assert other_kind.json() == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                 "response": {"uid": "u1", "allowed": True}}


@pytest.mark.parametrize(("name", "rule", "fine"), [
    ("workload-1", "label", True), ("a.b", "label", False), ("a.b", "subdomain", True),
    ("x" * 63, "label", True), ("x" * 64, "label", False), ("x" * 64, "subdomain", True),
    ("-a", "label", False), ("a-", "subdomain", False), ("a..b", "subdomain", False),
    ("abc\n", "label", False), ("", "label", False), ("..", "subdomain", False),
    ("Ab", "label", False), ("a/b", "subdomain", False)])
def test_name_rules_are_kubernetes_own(name: str, rule: str, fine: bool) -> None:
    problem = name_problem(name, rule="label" if rule == "label" else "subdomain")
    assert (problem is None) == fine
    if problem is not None:
        assert f"is not a valid DNS-1123 {rule}" in problem


@given(st.text(max_size=300))
def test_the_suggested_name_follows_the_rule(name: str) -> None:
    assert name_problem(suggest(name, "label"), rule="label") is None
    assert name_problem(suggest(name, "subdomain"), rule="subdomain") is None
    assert re.fullmatch(SUBDOMAIN_PATTERN.strip("^$"), suggest(name, "subdomain"))


def test_validation_problems_read_as_one_line() -> None:
    assert describe_invalid([
        {"type": "missing", "loc": ("body", "spec", "clusters", 0, "name"),
         "msg": "Field required"},
        {"type": "value_error", "loc": ("path", "name"), "msg": "Value error, bad name"},
    ]) == "body field spec.clusters.0.name: Field required; path parameter name: bad name"


@pytest.mark.parametrize(("hub_status", "answered"), [
    (404, 404), (409, 409), (422, 422), (403, 403), (401, 502), (429, 503), (500, 502),
    (None, 502)])
def test_the_global_clusters_refusals_keep_their_meaning(hub_status: int | None,
                                                         answered: int) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refused")
    async def refused() -> None:
        raise ApiError(status=Status(code=hub_status, message="users.kubeglobe.io is busy"))

    answer = TestClient(app).get("/refused")
    assert answer.status_code == answered
    assert "users.kubeglobe.io is busy" in answer.json()["detail"]
