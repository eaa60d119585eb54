"""One probe of a workload cluster: its version and nodes, read through its lightkube
client (`kube/clusters.py`)."""

from __future__ import annotations

import asyncio

import httpx2
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Node

from kubeglobe.hub.cluster_status import Inventory, summarize
from kubeglobe.kube.clusters import ClusterClient

PROBE_TIMEOUT = 3.0


class ProbeFailed(RuntimeError):
    pass


async def probe(cluster: ClusterClient, *, timeout: float = PROBE_TIMEOUT) -> Inventory:
    """One probe: the cluster's version and nodes (ProbeFailed says why not)."""
    step = "reading /version"
    try:
        async with asyncio.timeout(timeout):
            version = await cluster.version()
            step = "listing nodes"
            nodes = [node.to_dict() async for node in cluster.kube.list(Node)]
    except httpx2.HTTPStatusError as e:  # ApiError is one
        said = e.status.message if isinstance(e, ApiError) else e.response.reason_phrase
        raise ProbeFailed(f"{step}: HTTP {e.response.status_code} {said}") from e
    except (httpx2.HTTPError, OSError, TimeoutError, ValueError) as e:  # ValueError: no JSON
        raise ProbeFailed(f"{step}: {type(e).__name__}: {e}" if str(e) else
                          f"{step}: {type(e).__name__}") from e
    return summarize(version=version, nodes=nodes)
