"""Serving an upgrade stream (exec, attach, port-forward) against the local apiserver.

The agent dials its apiserver with its own credential and sends the answer's head back
as HEAD; after 101 the stream carries raw bytes both ways, held to one tunnel window.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.kube.http1 import apiserver_head
from kubeglobe.kube.pipe import splice
from kubeglobe.kube.rest import RestTarget
from kubeglobe.kube.upgrade import DialError, dial, target_endpoint
from kubeglobe.tunnel.mux import Stream
from kubeglobe.tunnel.pipe import StreamEnd


async def serve_upgrade(stream: Stream, target: RestTarget) -> None:
    meta: dict[str, Any] = stream.meta
    where = target_endpoint(target)
    query = meta.get("query", "")
    head = apiserver_head(
        method=meta["method"], target=meta["path"] + (f"?{query}" if query else ""),
        base_path=where.base_path, host=where.authority, upgrade=meta["upgrade"],
        forwarded=[(str(k), str(v)) for k, v in meta.get("headers", [])
                   if str(k).lower() != "authorization"],
        credentials=where.credentials)
    try:
        answer = await dial(where, head)
    except DialError as e:
        await stream.reset(f"apiserver unreachable from the agent: {e}")
        return
    await stream.send_head({"status": answer.head.status, "reason": answer.head.reason,
                            "headers": list(answer.head.headers)})
    if answer.pipe is None:
        if answer.body:
            await stream.send(answer.body)
        await stream.send_end()
        return
    await splice(answer.pipe, StreamEnd(stream))
