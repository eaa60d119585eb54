"""Serving an upgrade stream (exec, attach, port-forward) against the local apiserver.

The hub's OPEN meta carries the request (impersonation included) and `upgrade`, the
protocol asked for. The agent dials its apiserver itself, over TLS with its own
credential, and sends the answer's head back as HEAD. After `101 Switching Protocols`
the stream carries raw bytes both ways: a read from the apiserver waits until the
tunnel's window lets the previous bytes go, so a slow reader on the hub side holds the
agent at one window per stream, never more.
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
