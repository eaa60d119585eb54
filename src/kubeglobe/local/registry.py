"""The platform registry in the local environment: its pods in global, the images pushed.

`apply_registry` applies registry/manifests.py's objects to global (server-side apply:
a second `up` changes nothing), with the environment's state directory as the replicas'
shared storage. `push_images` waits until a replica answers on every control-plane node
and pushes the images the nodes pull (the platform image, the demo image) to one of them;
the shared storage serves them from all three, and a second push sends no blob again.
Only the pause image and the registry's own are imported into nodes (`import_images`):
a pod sandbox needs the first, and the registry cannot pull itself.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from kubeglobe.local.apply import apply_all
from kubeglobe.local.health import wait_until
from kubeglobe.local.images import ImageSpec
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan
from kubeglobe.registry.manifests import NAME, registry_manifests
from kubeglobe.registry.push import Pushed, push_archive

READY_SECONDS = 90.0


def registry_storage(plan: EnvironmentPlan) -> Path:
    return plan.state_dir / "registry"


def apply_registry(*, plan: EnvironmentPlan, kubeconfig: Path, image: str) -> None:
    apply_all(kubeconfig, registry_manifests(image=image,
                                             storage=str(registry_storage(plan))))


def _replicas(plan: EnvironmentPlan) -> tuple[str, ...]:
    first = next(n for n in plan.cluster(GLOBAL).nodes if n.control_plane)
    return plan.registry_mirrors(first)


def _answering(http: httpx.Client, replicas: tuple[str, ...]) -> str:
    down = []
    for url in replicas:
        try:
            if http.get(f"{url}/v2/").status_code == 200:
                continue
        except httpx.TransportError:
            pass
        down.append(url)
    return "ok" if not down else f"no answer yet from {', '.join(down)}"


def push_images(*, plan: EnvironmentPlan, archives: list[tuple[ImageSpec, Path]],
                kubeconfig: Path) -> list[Pushed]:
    replicas = _replicas(plan)
    with httpx.Client(trust_env=False, timeout=httpx.Timeout(120, connect=2)) as http:
        wait_until(f"{GLOBAL}: {NAME} on every control-plane node",
                   lambda: _answering(http, replicas), timeout=READY_SECONDS,
                   log=f"`kubectl -n kubeglobe-system describe daemonset {NAME}` with "
                       f"{kubeconfig}")
        return [push_archive(archive, registry=replicas[0], client=http)
                for _, archive in archives]
