"""How the platform API answers errors, and how its OpenAPI document says so.

Every error has one body, `ErrorBody`, and every route lists the statuses it can answer
(`errors(...)`), so /openapi.json is the truth a client, or a fuzzer, can hold answers
against. `install_error_handlers` gives that shape to FastAPI's request validation and
to the global cluster's refusals. Nothing else is caught here: an error without a known
meaning stays a logged 500, never dressed up as the caller's fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from lightkube.core.exceptions import ApiError
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """The body of every error answer of the platform API."""

    detail: str = Field(description="what is wrong, and how to fix it")


MEANINGS: dict[int, str] = {
    400: "The body cannot be read: it is not JSON text in UTF-8.",
    401: "No valid credentials: the bearer token is missing, malformed, unknown, revoked "
         "or expired (or, at login, the user name or password is wrong).",
    403: "The caller may not do this: the detail names the role it needs, or the policy "
         "(admission, lockout) that refused it.",
    404: "No such object.",
    409: "Conflicts with what exists: created already, changed meanwhile, or not possible "
         "for this kind of object; the detail says which.",
    410: "Gone: the one-time credential expired; issue a new one.",
    422: "The request is invalid: the detail names each field, the rule it breaks and a "
         "value that passes.",
    502: "The global cluster failed the request; retry.",
    503: "The platform cannot answer now (the global cluster or a target cluster is not "
         "reachable); retry.",
}

# What every route that authenticates its caller can answer besides its own errors.
AUTHENTICATED = (401, 502, 503)
# What every route that takes a body can answer about it.
BODY = (400, 422)


class KubeStatus(BaseModel, extra="allow"):
    """A Kubernetes `Status`: how the cluster proxy refuses (so kubectl prints why), and
    how a workload cluster's own refusals look."""

    apiVersion: str = "v1"
    kind: str = "Status"
    status: str = "Failure"
    message: str
    reason: str
    code: int


def errors(*codes: int, body: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer these error statuses, all as `body`."""
    return {code: {"model": body, "description": MEANINGS[code]}
            for code in sorted(set(codes))}


def _where(loc: Sequence[str | int]) -> str:
    if not loc:
        return "request"
    source, *rest = loc
    field = ".".join(str(p) for p in rest)
    if source == "body":
        return f"body field {field}" if field else "body"
    if source in ("path", "query", "header", "cookie"):
        return f"{source} parameter {field}"
    return ".".join(str(p) for p in loc)


def describe_invalid(problems: Sequence[Mapping[str, Any]]) -> str:
    """One line for all of a request's validation problems (pure)."""
    lines = []
    for problem in problems:
        if problem.get("type") == "json_invalid":
            reason = (problem.get("ctx") or {}).get("error", "")
            lines.append(f"body: not valid JSON ({reason}); send a JSON document")
            continue
        message = str(problem.get("msg", "invalid"))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        lines.append(f"{_where(problem.get('loc') or ())}: {message}")
    return "; ".join(lines) or "the request is invalid"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": describe_invalid(exc.errors())}, 422)


async def _hub_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if request.scope["type"] != "http":
        raise exc  # a WebSocket ends as before; only HTTP answers have a body
    code = exc.status.code or 0
    message = exc.status.message or str(exc)
    if code == 429:
        return JSONResponse({"detail": f"the global cluster is busy: {message}; retry"}, 503)
    if 400 <= code < 500 and code != 401:  # its 401 is about our credentials, not theirs
        return JSONResponse({"detail": f"the global cluster refused it: {message}"}, code)
    return JSONResponse({"detail": f"the global cluster failed ({code or 'no status'}): "
                         f"{message}; retry"}, 502)


def install_error_handlers(app: FastAPI) -> None:
    """Answer request validation and the global cluster's refusals as `ErrorBody`."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ApiError, _hub_refused)


class Accepted(BaseModel):
    """The body of a 202: what was started; it finishes in the background."""

    status: str
