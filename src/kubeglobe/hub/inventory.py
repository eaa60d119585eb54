"""One probe of a workload cluster: its version and nodes, read over its own API."""

from __future__ import annotations

import httpx

from kubeglobe.hub.cluster_status import Inventory, summarize
from kubeglobe.kube.rest import RestTarget

PROBE_TIMEOUT = 3.0


class ProbeFailed(RuntimeError):
    pass


async def probe_inventory(target: RestTarget, *, timeout: float = PROBE_TIMEOUT) -> Inventory:
    try:
        async with target.client(timeout=timeout) as http:
            version = await http.get("/version")
            version.raise_for_status()
            nodes = await http.get("/api/v1/nodes")
            nodes.raise_for_status()
    except httpx.HTTPStatusError as e:
        raise ProbeFailed(f"{e.request.url.path} answered HTTP {e.response.status_code}") from e
    except (httpx.HTTPError, OSError) as e:
        raise ProbeFailed(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e
    return summarize(version=version.json(), nodes=nodes.json().get("items", []))
