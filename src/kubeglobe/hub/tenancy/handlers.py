"""kopf wiring of tenancy: one propagation loop per cluster, woken by changes.

Each Cluster gets a daemon that reviews and propagates the whole tenancy state, then
sleeps until a Project, ProjectNamespace or PlatformRoleBinding changes anywhere, or at
most `PROPAGATION_SECONDS` (which bounds how long hand-made drift survives). The loop is
level-triggered: a wake-up carries no detail, every pass recomputes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
import kopf

from kubeglobe import failures
from kubeglobe.api.cluster import CLUSTER_PLURAL
from kubeglobe.api.meta import GROUP, VERSION
from kubeglobe.hub.tenancy.propagation import CleanupBlocked, TenancyPropagator
from kubeglobe.hub.tenancy.workloads import forced
from kubeglobe.kube.client import KUBE_ERRORS

PROPAGATION_SECONDS = 5.0
CLEANUP_RETRY_SECONDS = 10
TENANCY_PLURALS = ("projects", "projectnamespaces", "platformrolebindings")
log = logging.getLogger("kubeglobe.tenancy")
# What a pass raises when the hub (lightkube) or the cluster (httpx) is away for a moment.
_PASS_ERRORS: tuple[type[Exception], ...] = (*KUBE_ERRORS, httpx.HTTPError, TimeoutError)


class Wakeups:
    """Wake every waiting propagation loop at once."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Event] = set()

    def register(self) -> asyncio.Event:
        event = asyncio.Event()
        self._waiting.add(event)
        return event

    def unregister(self, event: asyncio.Event) -> None:
        self._waiting.discard(event)

    def poke(self) -> None:
        for event in self._waiting:
            event.set()


def register_tenancy_handlers(registry: kopf.OperatorRegistry,
                              propagator: TenancyPropagator) -> None:
    wakeups = Wakeups()

    @kopf.daemon(GROUP, VERSION, CLUSTER_PLURAL, registry=registry, cancellation_timeout=5)
    async def propagate_tenancy(name: str, spec: Any, stopped: Any, **_: Any) -> None:
        wake = wakeups.register()
        try:
            while not stopped:
                wake.clear()
                started = time.monotonic()
                try:
                    state = await propagator.read_state()
                    await propagator.publish_verdicts(state, cluster=name)
                    applied = await propagator.reconcile_cluster(name=name, spec=dict(spec),
                                                                 state=state)
                    if applied:
                        log.info("cluster %s: tenancy pass applied %d object(s) in %.2fs",
                                 name, applied, time.monotonic() - started)
                except _PASS_ERRORS as e:  # the hub or the cluster away: the next pass retries
                    log.warning("cluster %s: tenancy pass failed: %s: %s", name,
                                type(e).__name__, e)
                    failures.count(component="tenancy", operation="propagation pass",
                                   error=e)
                except Exception as e:  # broad on purpose: a bug in one pass must not end
                    # the cluster's only propagation loop; the traceback shows the bug
                    log.exception("cluster %s: tenancy pass failed unexpectedly", name)
                    failures.count(component="tenancy", operation="propagation pass",
                                   error=e)
                with contextlib.suppress(TimeoutError):  # the wait's end, not a failure
                    await asyncio.wait_for(wake.wait(), PROPAGATION_SECONDS)
        finally:
            wakeups.unregister(wake)

    for plural in TENANCY_PLURALS:
        @kopf.on.event(GROUP, VERSION, plural, registry=registry)
        async def changed(**_: Any) -> None:
            wakeups.poke()

    @kopf.on.delete(GROUP, VERSION, "projectnamespaces", registry=registry)
    async def remove_namespace(name: str, spec: Any, meta: Any, **_: Any) -> None:
        """The finalizer: the namespace leaves its cluster before the resource goes."""
        try:
            await propagator.remove_namespace(name=name, spec=dict(spec),
                                              annotations=dict(meta.get("annotations") or {}))
        except CleanupBlocked as e:
            raise kopf.TemporaryError(str(e), delay=CLEANUP_RETRY_SECONDS) from e

    @kopf.on.delete(GROUP, VERSION, "projects", registry=registry)
    async def remove_project(name: str, meta: Any, **_: Any) -> None:
        """The finalizer: every namespace of the project goes first."""
        left = await propagator.remove_project_namespaces(
            project=name, clusters=None, force=forced(meta.get("annotations")))
        if left:
            raise kopf.TemporaryError(f"project {name}: waiting for {left} namespace(s) to be "
                                      "removed from their clusters",
                                      delay=CLEANUP_RETRY_SECONDS)

    @kopf.on.update(GROUP, VERSION, "projects", field="spec.clusters", registry=registry)
    async def clusters_removed(name: str, old: Any, new: Any, meta: Any, **_: Any) -> None:
        """A cluster taken out of a project takes the project's namespaces there with it."""
        gone = {c["name"] for c in old or []} - {c["name"] for c in new or []}
        if gone:
            await propagator.remove_project_namespaces(
                project=name, clusters=gone, force=forced(meta.get("annotations")))

    del propagate_tenancy, changed, remove_namespace, remove_project, clusters_removed
