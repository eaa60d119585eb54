"""A jittered exponential backoff for loops that retry forever (reconnects).

Each failed attempt doubles the wait up to `most`, with jitter (half to all of it) so
that many agents do not come back in step; an attempt that lasted `stable_after`
seconds starts the waits over.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable


class Backoff:
    def __init__(self, *, first: float = 1.0, most: float = 30.0, stable_after: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._first = first
        self._most = most
        self._stable_after = stable_after
        self._clock = clock
        self._sleep = sleep
        self._delay = first
        self._started = clock()

    def attempt(self) -> None:
        """An attempt starts now."""
        self._started = self._clock()

    async def wait(self) -> None:
        """The attempt ended: wait before the next."""
        if self._clock() - self._started > self._stable_after:
            self._delay = self._first
        await self._sleep(self._delay * random.uniform(0.5, 1.0))
        self._delay = min(self._most, self._delay * 2)
