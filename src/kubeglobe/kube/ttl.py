"""A tiny time-bounded memo for reads from the global cluster on hot paths.

Remembering a read for at most `seconds` saves the proxy its API round trips per
request, while a change (a revoked token, a deleted cluster) still holds within that.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, seconds: float, *, max_entries: int = 10_000) -> None:
        self._seconds = seconds
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._seconds:
            return hit[1]
        value = await load()
        if len(self._entries) >= self._max:
            self._entries = {k: v for k, v in self._entries.items()
                             if now - v[0] < self._seconds}
        self._entries[key] = (now, value)
        return value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)
