"""The gateway controller: keeps HAProxy's fast path in line with the platform's state.

Level-triggered: on any change to its list+watch copies, and at least every
`RESYNC_SECONDS`, it compares what HAProxy should hold with what HAProxy holds now
(asked over its runtime API, not remembered, so a restarted HAProxy is refilled). It
fails closed: while any copy is broken it empties the identity map, and every request
takes the API servers' slow path, which is always right.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.operators import exists
from lightkube.resources.core_v1 import Endpoints, Secret
from pydantic import ValidationError

from kubeglobe.api.cluster import ClusterSpec
from kubeglobe.api.meta import CLUSTER_LABEL, SYSTEM_NAMESPACE
from kubeglobe.api.tenancy import GroupSpec, UserSpec
from kubeglobe.failures import caught, count
from kubeglobe.files import write_atomic
from kubeglobe.gateway.backends import (
    ClusterBackend,
    Rendered,
    Unservable,
    cluster_backend,
    render,
)
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.identities import StoredToken, identity_map
from kubeglobe.gateway.reverse import (
    AgentPort,
    ReverseBackend,
    ServersPort,
    attached,
    render_reverse,
    reverse_backend,
    routes,
)
from kubeglobe.gateway.runtime import HAProxyRuntime, RuntimeApiError, map_text
from kubeglobe.gateway.servers import SERVERS_SERVICE, render_servers
from kubeglobe.hub.cluster_access import ClusterUnreachable, kubeconfig_in
from kubeglobe.hub.tokens import TOKEN_KIND_LABEL, TOKEN_SECRET_TYPE, read_token_record
from kubeglobe.kube.client import KUBE_ERRORS, KubeconfigError
from kubeglobe.kube.endpoints import ready_addresses
from kubeglobe.kube.informer import Informer
from kubeglobe.kube.resources import ClusterCR, GroupCR, UserCR
from kubeglobe.kube.rest import read_credentials
from kubeglobe.kube.secrets import secret_text

log = logging.getLogger("kubeglobe.gateway")
RESYNC_SECONDS = 5.0
ROUTES_SECONDS = 1.0
RETRY_SECONDS = 2.0

Validate = Callable[[Path], Awaitable[None]]


class ConfigRefused(RuntimeError):
    """`haproxy -c` refused the rendered backends; the message has its words."""


# What a sync pass may meet and outlive: the hub or HAProxy away, a configuration HAProxy
# refuses, a file that cannot be written. Anything else is a bug, and ends the process.
_RETRIED: tuple[type[Exception], ...] = (*KUBE_ERRORS, RuntimeApiError, ConfigRefused)


def haproxy_check(base_config: Path, haproxy: str = "haproxy") -> Validate:
    """A validator running `haproxy -c` on the base configuration plus new backends."""

    async def check(candidate: Path) -> None:
        done = await asyncio.to_thread(
            subprocess.run, [haproxy, "-c", "-q", "-f", str(base_config), "-f", str(candidate)],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigRefused((done.stderr or done.stdout).strip()[-2000:])

    return check


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


@dataclass
class GatewaySync:
    hub: AsyncClient
    runtime: HAProxyRuntime
    files: GatewayFiles
    validate: Validate
    agent_port: AgentPort | None = None  # where agents attach (reverse HTTP), if anywhere
    servers_port: ServersPort | None = None  # where the servers reach attached agents
    # The CA of the API server replicas' certificates: given, the gateway renders their
    # backend from their Service's Endpoints (they are pods); else the base config has it.
    servers_ca_file: Path | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _unservable: dict[str, str] = field(default_factory=dict)
    _last_error: str | None = None
    _rendered: dict[str, str] = field(default_factory=dict)  # the cluster map as written
    _rendered_once: bool = False
    _reverse: set[str] = field(default_factory=set)  # reverse backends as written
    _haproxy_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one writer at once

    def __post_init__(self) -> None:
        if (self.agent_port is None) != (self.servers_port is None):
            raise ValueError("the agent port and the servers' port to the agents go "
                             "together: give both or neither")
        self.tokens = Informer(self.hub, Secret, namespace=SYSTEM_NAMESPACE,
                               labels={TOKEN_KIND_LABEL: exists()}, changed=self.changed)
        self.users = Informer(self.hub, UserCR, changed=self.changed)
        self.groups = Informer(self.hub, GroupCR, changed=self.changed)
        self.clusters = Informer(self.hub, ClusterCR, changed=self.changed)
        # The kubeconfig Secrets the platform made for imported clusters: read from this
        # copy, not fetched on every pass; a rotated kubeconfig wakes a pass at once.
        self.kubeconfigs = Informer(self.hub, Secret, namespace=SYSTEM_NAMESPACE,
                                    labels={CLUSTER_LABEL: exists()}, changed=self.changed)
        self.replicas = Informer(self.hub, Endpoints, namespace=SYSTEM_NAMESPACE,
                                 labels={"app.kubernetes.io/name": SERVERS_SERVICE},
                                 changed=self.changed)
        self._informers = (self.tokens, self.users, self.groups, self.clusters,
                           self.kubeconfigs,
                           *((self.replicas,) if self.servers_ca_file is not None else ()))

    async def run(self) -> None:
        for informer in self._informers:
            informer.start()
        follow = asyncio.create_task(self._follow_agents())
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), RESYNC_SECONDS)
                self.changed.clear()
                if follow.done():  # ended on a bug: so does the process (it is restarted)
                    follow.result()
                try:
                    await self.sync_once()
                    self._report(None)
                except _RETRIED as e:  # HAProxy or the hub away, a refused config: retry
                    count(component="gateway", operation="sync", error=e)
                    self._report(f"{type(e).__name__}: {e}")
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
            for informer in self._informers:
                await informer.stop()

    async def _follow_agents(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(ROUTES_SECONDS)
            try:
                await self.sync_routes()
                failing = False
            except RuntimeApiError as e:  # HAProxy reloading or away: the next round
                if failing:
                    count(component="gateway", operation="routes", error=e)
                else:  # said once per outage, not every second
                    caught(log, component="gateway", operation="routes", error=e)
                failing = True

    async def sync_routes(self) -> None:
        """Map each registered cluster to its reverse backend while its agent is
        attached, and not at all otherwise (no reload: the map at runtime)."""
        async with self._haproxy_lock:
            if not self._rendered_once:
                return  # HAProxy's map is the file's until the first render: keep it
            now = attached(await self.runtime.server_connections())
            wanted = routes(self._rendered, self._reverse, now)
            if await self.runtime.show_map(self.files.clusters) != wanted:
                await self.runtime.replace_map(self.files.clusters, wanted)

    def _report(self, error: str | None) -> None:
        """Log a failure once, and its end once: a broken HAProxy is not a log storm."""
        if error != self._last_error:
            if error is None:
                log.info("gateway in sync again")
            else:
                log.warning("gateway sync failed (retrying quietly): %s", error)
            self._last_error = error

    async def sync_once(self) -> None:
        await self.sync_identities()
        await self.sync_backends()

    # -- identities ------------------------------------------------------------------
    def desired_identities(self) -> dict[str, str]:
        tokens, users, groups = self.tokens.items(), self.users.items(), self.groups.items()
        if tokens is None or users is None or groups is None:
            return {}  # fail closed: the slow path serves everyone meanwhile
        stored = []
        for secret in tokens.values():
            if secret.type != TOKEN_SECRET_TYPE:
                continue
            data = secret.data or {}
            try:
                record = read_token_record(data)
            except ValueError as e:  # the API servers refuse it too: not served here
                count(component="gateway", operation="read token", error=e)
                continue
            stored.append(StoredToken(digest=secret_text(data, "sha256") or "", record=record))
        enabled = set()
        for name, obj in users.items():
            with contextlib.suppress(ValidationError):
                if not UserSpec.model_validate(obj.get("spec") or {}).disabled:
                    enabled.add(name)
        members: dict[str, list[str]] = {}
        for name, obj in groups.items():
            with contextlib.suppress(ValidationError):
                members[name] = GroupSpec.model_validate(obj.get("spec") or {}).members
        return identity_map(stored, enabled_users=enabled, groups=members, now=self.clock())

    async def sync_identities(self) -> None:
        wanted = self.desired_identities()
        if await self.runtime.show_map(self.files.identities) != wanted:
            write_atomic(self.files.identities, map_text(wanted))  # for HAProxy's next start
            await self.runtime.replace_map(self.files.identities, wanted)

    # -- cluster backends --------------------------------------------------------------
    async def desired_backends(self) -> Rendered:
        clusters = self.clusters.items()
        backends: list[ClusterBackend] = []
        reverse: list[ReverseBackend] = []
        for name, obj in sorted((clusters or {}).items()):
            try:
                spec = ClusterSpec.model_validate(obj.get("spec") or {})
            except ValidationError:
                continue
            try:
                if spec.mode == "register":
                    found = reverse_backend(name, (obj.get("metadata") or {}).get("uid", ""))
                    if self.agent_port is not None and found is not None:
                        reverse.append(found)
                elif spec.kubeconfigSecretRef is not None:
                    backends.append(await self._backend(name, spec))
                else:
                    continue
                self._unservable.pop(name, None)
            except (Unservable, KubeconfigError) as e:
                if self._unservable.get(name) != str(e):
                    log.info("cluster %s is served by the API servers only: %s", name, e)
                    self._unservable[name] = str(e)
        rendered = render(backends, self.files.certs)
        if self.servers_ca_file is not None:
            found = (self.replicas.items() or {}).get(SERVERS_SERVICE)
            subsets = found.subsets if found else None
            servers = render_servers(ready_addresses(subsets), self.servers_ca_file,
                                     not_ready=ready_addresses(subsets, not_ready=True))
            rendered = replace(rendered, config=rendered.config + "\n" + servers)
        if self.agent_port is None or self.servers_port is None:
            return rendered
        agents = render_reverse(self.agent_port, reverse, self.servers_port)
        return replace(rendered, config=rendered.config + "\n" + agents,
                       reverse=frozenset(b.name for b in reverse))

    async def _backend(self, name: str, spec: ClusterSpec) -> ClusterBackend:
        ref = spec.kubeconfigSecretRef
        assert ref is not None
        cached = self.kubeconfigs.items() if ref.namespace == SYSTEM_NAMESPACE else None
        secret = (cached or {}).get(ref.name)
        if secret is None:  # a Secret the platform did not make, or the copy is not there
            try:
                secret = await self.hub.get(Secret, ref.name, namespace=ref.namespace)
            except ApiError as e:
                raise Unservable(f"cannot read its kubeconfig Secret: {e.status.message}") from e
        try:
            config = kubeconfig_in(secret, ref)
        except ClusterUnreachable as e:
            raise Unservable(str(e)) from e
        return cluster_backend(name, read_credentials(config))

    async def sync_backends(self) -> None:
        async with self._haproxy_lock:
            if self.clusters.items() is None or (self.servers_ca_file is not None
                                                 and self.replicas.items() is None):
                return  # keep what HAProxy has until the copy is back; identities fail closed
            wanted = await self.desired_backends()
            cluster_map = map_text(wanted.clusters)
            live = await self.runtime.backends()
            if not (_read(self.files.backends) == wanted.config.encode()
                    and _read(self.files.clusters) == cluster_map
                    and all(_read(p) == c for p, c in wanted.files.items())
                    and set(wanted.clusters.values()) | wanted.reverse <= live):
                for path, content in wanted.files.items():
                    write_atomic(path, content)
                candidate = self.files.backends.with_name("gateway.cfg.new")
                write_atomic(candidate, wanted.config.encode(), mode=0o644)
                await self.validate(candidate)
                os.replace(candidate, self.files.backends)
                write_atomic(self.files.clusters, cluster_map, mode=0o644)
                await self.runtime.reload()
                log.info("gateway serves clusters: %s",
                         ", ".join(sorted(wanted.clusters)) or "none")
            self._rendered, self._reverse = dict(wanted.clusters), set(wanted.reverse)
            self._rendered_once = True


def make_runtime(files: GatewayFiles) -> HAProxyRuntime:
    return HAProxyRuntime(admin_socket=files.admin_socket(), master_socket=files.master_socket())


