"""Probes of a workload cluster, through its kept client (`kube/clusters.py`): the
heartbeat's (version and nodes) and the liveness probe's (`/readyz`)."""

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


async def alive(cluster: ClusterClient, *, timeout: float = 2.0) -> None:
    """The cheapest question: does the cluster's apiserver answer `/readyz` with 200
    (ProbeFailed says why not)? Between heartbeats, so a lost cluster shows soon."""
    try:
        async with asyncio.timeout(timeout):
            (await cluster.plain.get("readyz")).raise_for_status()
    except httpx2.HTTPStatusError as e:
        raise ProbeFailed(f"/readyz: HTTP {e.response.status_code}") from e
    except (httpx2.HTTPError, OSError, TimeoutError) as e:
        raise ProbeFailed(f"/readyz: {type(e).__name__}: {e}".rstrip(": ")) from e


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
