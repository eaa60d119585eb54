"""A 404 from the Kubernetes API as an answer, not an error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from lightkube.core.exceptions import ApiError

T = TypeVar("T")


async def missing_ok(call: Awaitable[T]) -> T | None:
    """`call`'s result, or None if the object is not there (a get of nothing, a delete
    of what is gone already); any other refusal is raised."""
    try:
        return await call
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def missing_ok_sync(call: Callable[[], T]) -> T | None:
    """`missing_ok` for a blocking client's call."""
    try:
        return call()
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise
