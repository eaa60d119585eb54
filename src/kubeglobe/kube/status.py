"""Kubernetes `Status` objects and bearer tokens, the same way everywhere (pure).

Every refusal a Kubernetes client may read is a failed `Status` with the reason
Kubernetes itself gives that code (apimachinery's `NewGenericServerResponse`), so
kubectl prints our message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# The reasons Kubernetes gives these codes; any other 5xx is InternalError.
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict",
           410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


def reason(code: int) -> str:
    """Kubernetes' reason for an HTTP status code ("" for codes it gives none)."""
    return REASONS.get(code, "InternalError" if code >= 500 else "")


def status(code: int, message: str) -> dict[str, object]:
    """A failed Kubernetes `Status`: what kubectl and client libraries print."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason(code), "code": code}


def status_json(code: int, message: str) -> bytes:
    return json.dumps(status(code, message), separators=(",", ":")).encode()


def bearer_token(headers: Iterable[tuple[str, str]]) -> str | None:
    """The token of the request's `Authorization: Bearer ...` header, if it has one."""
    value = next((v for k, v in headers if k.lower() == "authorization"), "")
    return parse_bearer(value)


def parse_bearer(value: str) -> str | None:
    """The token of an `Authorization` header's value, if it is a bearer token."""
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
