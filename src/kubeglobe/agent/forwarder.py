"""Serving one tunnel stream: the hub's request, made to the local apiserver.

The request is the stream's meta (impersonation included) and its data the body; the
answer goes back as HEAD then data, streamed, so watches and followed logs flow as
they happen. Upgrades (exec, attach, port-forward) go to `agent/streams.py`.
"""

from __future__ import annotations

from typing import Any

import h11

from kubeglobe.agent.apiserver_http import ApiserverHttp
from kubeglobe.agent.streams import serve_upgrade
from kubeglobe.kube.rest import RestTarget
from kubeglobe.tunnel.mux import Stream

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te",
               "host", "authorization"}
_NOT_FORWARDED = _HOP_BY_HOP | {"content-length", "expect"}  # the body is re-framed


class Forwarder:
    def __init__(self, http: ApiserverHttp, target: RestTarget | None = None) -> None:
        self._http = http
        self._target = target  # for upgrades, which need their own connection

    async def __call__(self, stream: Stream) -> None:
        meta: dict[str, Any] = stream.meta
        if meta.get("upgrade"):
            if self._target is None:
                await stream.reset("this agent cannot carry exec, attach or port-forward")
                return
            await serve_upgrade(stream, self._target)
            return
        headers = [(k, v) for k, v in meta.get("headers", [])
                   if k.lower() not in _NOT_FORWARDED]
        query = meta.get("query", "")
        try:
            reply = await self._http.request(
                meta["method"], meta["path"] + (f"?{query}" if query else ""), headers,
                stream.chunks() if meta.get("body", True) else None)
        except (OSError, h11.ProtocolError) as e:
            await stream.reset(f"apiserver unreachable from the agent: {e}")
            return
        try:
            await stream.send_head({
                "status": reply.status,
                "headers": [(k, v) for k, v in reply.headers if k.lower() not in _HOP_BY_HOP],
            })
            async for chunk in reply.chunks():
                await stream.send(chunk)
            await stream.send_end()
        finally:
            reply.release()
