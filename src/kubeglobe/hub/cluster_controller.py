"""The Cluster controller: validates Clusters, heartbeats them, cleans up on delete.

Level-triggered: every heartbeat computes the whole status from the cluster as it is
now (`cluster_status.observe_status`). Between heartbeats a liveness probe (`/readyz`)
writes nothing while the cluster answers, so a fine cluster costs one status write per
heartbeat and a silent one is Unavailable after `lost_after_seconds`. Handlers sit on a
registry of their own so that the process decides when kopf runs (only while it leads).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2
import kopf
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Namespace
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding
from lightkube.types import PatchType
from pydantic import ValidationError

from kubeglobe.agent.manifests import PLATFORM_ADMIN_BINDING, platform_admins_binding
from kubeglobe.api.cluster import CLUSTER_PLURAL, ClusterSpec, ClusterStatus
from kubeglobe.api.meta import FIELD_MANAGER, GROUP, SYSTEM_NAMESPACE, VERSION
from kubeglobe.failures import caught, count
from kubeglobe.hub.cluster_access import ClusterAccess, ClusterUnreachable
from kubeglobe.hub.cluster_status import Inventory, observe_status, rejected
from kubeglobe.hub.inventory import ProbeFailed, alive, probe
from kubeglobe.kube.client import KubeconfigError
from kubeglobe.kube.clusters import ClusterClient
from kubeglobe.kube.resources import ClusterCR

log = logging.getLogger("kubeglobe.controller")
COMPONENT = "cluster-controller"
MAX_BACKOFF = 60.0
BACKOFF_AFTER = 5  # failed probes in a row before probing less often


@dataclass
class ControllerSettings:
    heartbeat_seconds: float = 10.0  # a full probe (version, nodes) and a status write
    probe_seconds: float = 2.0  # a liveness probe between heartbeats
    lost_after_seconds: float = 8.0  # no answer for this long: Unavailable


@dataclass
class _Probe:
    next_at: float = 0.0  # no probe before (monotonic), while backing off
    heartbeat_at: float = 0.0  # the next full probe (monotonic)
    failures: int = 0
    last_contact: dt.datetime | None = None  # the latest answer to any probe


@dataclass
class ClusterController:
    hub: AsyncClient
    access: ClusterAccess
    settings: ControllerSettings = field(default_factory=ControllerSettings)
    _probes: dict[str, _Probe] = field(default_factory=dict)

    async def reconcile(self, *, name: str, spec: dict[str, Any], status: dict[str, Any],
                        generation: int | None) -> None:
        now = dt.datetime.now(dt.UTC)
        current = _known_status(status)
        try:
            parsed = ClusterSpec.model_validate(spec)
        except ValidationError as e:
            reason = "; ".join(err["msg"] for err in e.errors())
            await self._write(name, rejected(current=current, reason=f"invalid spec: {reason}",
                                             now=now, generation=generation))
            return
        if current.phase == "Pending":
            await self._write(name, current.model_copy(update={
                "phase": "Connecting", "message": f"{parsed.mode}: waiting for first contact",
                "observedGeneration": generation}))
        self._probes.pop(name, None)  # a changed spec deserves a probe at once

    async def heartbeat(self, *, name: str, spec: dict[str, Any], status: dict[str, Any],
                        generation: int | None, now_mono: float) -> None:
        """One tick: a full probe when one is due (or the cluster is not Ready), else a
        liveness probe, which writes the status only when it fails."""
        tracker = self._probes.setdefault(name, _Probe())
        if now_mono < tracker.next_at:
            return
        current = _known_status(status)
        try:
            parsed = ClusterSpec.model_validate(spec)
        except ValidationError:
            return  # reconcile already rejected it
        full = now_mono >= tracker.heartbeat_at or current.phase != "Ready"
        inventory = None
        try:
            cluster = await self.access.client(name=name, spec=parsed)
            if full:
                inventory = await probe(cluster)
            else:
                await alive(cluster)
        except (ClusterUnreachable, ProbeFailed, KubeconfigError) as e:
            count(component=COMPONENT, operation=f"heartbeat of cluster {name}", error=e)
            tracker.failures += 1
            if tracker.failures > BACKOFF_AFTER:  # long gone: back off to once a minute
                delay = min(MAX_BACKOFF, self.settings.probe_seconds * 2 ** (
                    tracker.failures - BACKOFF_AFTER))
                tracker.next_at = now_mono + delay - 0.5
            new = self._observe(current, tracker, None, str(e), generation)
        else:
            tracker.failures, tracker.next_at = 0, 0.0
            tracker.last_contact = dt.datetime.now(dt.UTC)
            if inventory is None:
                return  # alive, and the last heartbeat's status still holds
            tracker.heartbeat_at = now_mono + self.settings.heartbeat_seconds - 0.5
            new = self._observe(current, tracker, inventory, None, generation)
            if new.phase == "Ready" and current.phase != "Ready":
                await self._ensure_rbac(name, cluster)
        if new.phase != current.phase:
            log.info("cluster %s: %s -> %s %s", name, current.phase, new.phase, new.message)
        await self._write(name, new)

    def _observe(self, current: ClusterStatus, tracker: _Probe, inventory: Inventory | None,
                 error: str | None, generation: int | None) -> ClusterStatus:
        return observe_status(current=current, inventory=inventory, error=error,
                              now=dt.datetime.now(dt.UTC), last_contact=tracker.last_contact,
                              lost_after_seconds=self.settings.lost_after_seconds,
                              generation=generation)

    async def _write(self, name: str, status: ClusterStatus) -> None:
        """Write the whole status; not through kopf's patch, so that a refused write is one
        logged line and a retry at the next heartbeat, never a dead timer."""
        body = {"status": status.model_dump(mode="json")}
        try:
            await self.hub.patch(ClusterCR.Status, name, body, patch_type=PatchType.MERGE)
        except ApiError as e:
            caught(log, component=COMPONENT, operation=f"writing the status of cluster {name}",
                   error=e)

    async def _ensure_rbac(self, name: str, cluster: ClusterClient) -> None:
        """What the platform creates in every cluster: today, its admins' binding."""
        try:
            await cluster.kube.apply(codecs.from_dict(platform_admins_binding()),
                                     field_manager=FIELD_MANAGER, force=True)
        except (httpx2.HTTPError, OSError) as e:  # ApiError is an httpx2.HTTPError
            caught(log, component=COMPONENT,
                   operation=f"applying {PLATFORM_ADMIN_BINDING} on cluster {name}", error=e)

    async def cleanup(self, *, name: str, spec: dict[str, Any],
                      status: dict[str, Any]) -> None:
        """Remove what the platform created in the cluster before the Cluster goes: import
        mode, the admins' binding; register mode, the agent's namespace, which owns the
        agent's bindings too (the agent makes it so at start), so one request carried by
        the agent itself removes the agent and all its rights."""
        self._probes.pop(name, None)
        if _known_status(status).lastHeartbeatTime is None:
            log.info("cluster %s was never reached: nothing to clean up there", name)
            self.access.forget(name)
            return
        try:
            parsed = ClusterSpec.model_validate(spec)
            cluster = await self.access.client(name=name, spec=parsed)
        except (ValidationError, ClusterUnreachable, KubeconfigError) as e:
            caught(log, component=COMPONENT, operation=f"cleanup of cluster {name} (skipped)",
                   error=e)
            self.access.forget(name)
            return
        try:
            if parsed.mode == "register":
                await cluster.kube.delete(Namespace, SYSTEM_NAMESPACE)
            else:
                await cluster.kube.delete(ClusterRoleBinding, PLATFORM_ADMIN_BINDING)
        except ApiError as e:
            if e.status.code != 404:
                raise kopf.TemporaryError(f"cleanup of {name}: {e.status.code} "
                                          f"{e.status.message}", delay=10) from e
        except (httpx2.HTTPError, OSError) as e:
            raise kopf.TemporaryError(f"cluster {name} unreachable for cleanup: {e}",
                                      delay=10) from e
        self.access.forget(name)


def _known_status(status: dict[str, Any]) -> ClusterStatus:
    known = {k: v for k, v in (status or {}).items() if k in ClusterStatus.model_fields}
    try:
        return ClusterStatus.model_validate(known)
    except ValidationError:
        return ClusterStatus()


def register_handlers(registry: kopf.OperatorRegistry, controller: ClusterController) -> None:
    resource = (GROUP, VERSION, CLUSTER_PLURAL)

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, field="spec", registry=registry)
    async def reconcile(name: str, spec: Any, status: Any, meta: Any, **_: Any) -> None:
        await controller.reconcile(name=name, spec=dict(spec), status=dict(status),
                                   generation=meta.get("generation"))

    @kopf.timer(*resource, interval=controller.settings.probe_seconds, sharp=True,
                registry=registry)
    async def heartbeat(name: str, spec: Any, status: Any, meta: Any, **_: Any) -> None:
        await controller.heartbeat(
            name=name, spec=dict(spec), status=dict(status), generation=meta.get("generation"),
            now_mono=asyncio.get_running_loop().time())

    @kopf.on.delete(*resource, registry=registry, retries=6)
    async def cleanup(name: str, spec: Any, status: Any, **_: Any) -> None:
        await controller.cleanup(name=name, spec=dict(spec), status=dict(status))

    del reconcile, heartbeat, cleanup  # registered; the names are not used here
