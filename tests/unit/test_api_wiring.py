"""The API's routes are wired as meant: the caller comes from the bearer token, never
from a query parameter (a wiring mistake FastAPI would otherwise accept silently)."""

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
