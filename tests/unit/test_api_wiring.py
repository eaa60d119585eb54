"""The API's routes are wired as meant: the caller comes from the bearer token, never
from a query parameter (a wiring mistake FastAPI would otherwise accept silently), and
every operation in /openapi.json has an id of its own."""

import warnings
from collections import Counter
from typing import Any, cast

from lightkube import AsyncClient

from kubeglobe.server.app import create_app


def test_no_route_takes_the_caller_from_the_query() -> None:
    app = create_app(hub=cast(AsyncClient, object()))
    schema: dict[str, Any] = app.openapi()
    assert "/api/v1/login" in schema["paths"] and "/api/v1/rolebindings" in schema["paths"]
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            names = {p["name"] for p in op.get("parameters", [])}
            assert "identity" not in names, f"{method.upper()} {path} reads identity from query"


def test_every_operation_has_its_own_id_and_the_proxy_documents_every_method() -> None:
    app = create_app(hub=cast(AsyncClient, object()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of a duplicate id; fail on it
        schema: dict[str, Any] = app.openapi()
    ids = Counter(op["operationId"] for methods in schema["paths"].values()
                  for op in methods.values())
    assert [i for i, n in ids.items() if n > 1] == []
    proxy = schema["paths"]["/clusters/{name}/k8s/{path}"]
    assert sorted(proxy) == ["delete", "get", "head", "options", "patch", "post", "put"]
