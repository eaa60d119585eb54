"""A live in-memory copy of one kind of resource (list, then watch).

For hot read paths such as admission, where a fresh LIST per request costs tens of
milliseconds. Until the first list is done (or after the watch broke, until the next
list), `items()` returns None and the caller reads the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import GlobalResource, NamespacedResource

from kubeglobe import failures
from kubeglobe.kube.client import KUBE_ERRORS

log = logging.getLogger("kubeglobe.informer")
RETRY_SECONDS = 1.0


class Background:
    """One long-running task of a process: started once, cancelled and awaited on stop."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # the cancel just asked for
                await self._task
            self._task = None


def _name(obj: Any) -> str:
    if isinstance(obj, dict):  # generic resources read like dicts
        name: str = obj["metadata"]["name"]
        return name
    return str(obj.metadata.name)  # typed resources (Secret, ...)


def namespaced_name(obj: Any) -> str:
    """`namespace/name` of a typed resource: the key for a copy of every namespace."""
    return f"{obj.metadata.namespace}/{obj.metadata.name}"


class Informer:
    """`namespace` and `labels` narrow what is copied; `changed` is set on every change
    (and on every relist), for a level-triggered loop to wake on. Items are keyed by
    name, or by `key` (`namespaced_name` for a copy of every namespace)."""

    def __init__(self, client: AsyncClient,
                 res: type[GlobalResource] | type[NamespacedResource], *,
                 namespace: str | None = None, labels: dict[str, Any] | None = None,
                 changed: asyncio.Event | None = None,
                 key: Callable[[Any], str] = _name) -> None:
        self._client = client
        self._res = res
        self._key = key
        self._where: dict[str, Any] = {"labels": labels}
        if namespace is not None:
            self._where["namespace"] = namespace
        self._changed = changed or asyncio.Event()
        self._items: dict[str, Any] | None = None
        self._task = Background(self._run)

    def items(self) -> dict[str, Any] | None:
        return self._items

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        kind = self._res.__name__
        failing = 0  # failures since the last good list: the first is logged, all counted
        while True:
            try:
                listing = self._client.list(self._res, **self._where)
                fresh = {}
                async for obj in listing:
                    fresh[self._key(obj)] = obj
                version = listing.resourceVersion
                self._items = fresh
                self._changed.set()
                if failing:
                    log.info("informer for %s: listed again after %d failure(s)", kind,
                             failing)
                    failing = 0
                async for event, obj in self._client.watch(self._res, resource_version=version,
                                                           **self._where):
                    name = self._key(obj)
                    if event == "DELETED":
                        fresh.pop(name, None)
                    else:
                        fresh[name] = obj
                    self._changed.set()
            except Exception as e:  # broad on purpose: a dead informer would serve a stale copy
                if isinstance(e, ApiError) and e.status.code == 410:
                    # Expected now and then: the watch fell behind the API's compaction.
                    # The copy stays good until the new list replaces it: relist at once.
                    log.info("informer for %s: watch expired (410 Gone); relisting", kind)
                    continue
                failing += 1
                if not isinstance(e, KUBE_ERRORS):  # a bug: the traceback shows it
                    log.exception("informer for %s failed unexpectedly; relisting", kind)
                elif failing == 1:  # a broken watch or the API away: once per outage
                    log.warning("informer for %s: %s: %s; relisting every %.0f s until "
                                "it works", kind, type(e).__name__, e, RETRY_SECONDS)
                failures.count(component="informer", operation=f"list and watch {kind}",
                               error=e)
            self._items = None
            self._changed.set()
            await asyncio.sleep(RETRY_SECONDS)
