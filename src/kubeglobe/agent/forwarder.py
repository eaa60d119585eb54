"""Serving one tunnel stream: the hub's request, made to the local apiserver.

The request arrives as the stream's meta (method, path, query, headers, including the
hub's impersonation headers); its body follows as the stream's data. The response goes
back as a HEAD then data, streamed, so watches and followed logs flow as they happen.
The agent adds its own credential (its ServiceAccount token or kubeconfig user).
Upgrade requests (exec, attach, port-forward) go to `agent/streams.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from kubeglobe.agent.streams import serve_upgrade
from kubeglobe.kube.rest import RestTarget
from kubeglobe.tunnel.mux import Stream

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "te",
               "host", "authorization"}
_NOT_FORWARDED = _HOP_BY_HOP | {"content-length"}  # the request body is re-framed


async def _body(stream: Stream) -> AsyncIterator[bytes]:
    while True:
        chunk = await stream.recv()
        if chunk is None:
            return
        yield chunk


class Forwarder:
    def __init__(self, client: httpx.AsyncClient, target: RestTarget | None = None) -> None:
        self._client = client
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
        request = self._client.build_request(
            meta["method"], httpx.URL(path=meta["path"], query=meta.get("query", "").encode()),
            headers=headers, content=_body(stream) if meta.get("body", True) else None,
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as e:
            await stream.reset(f"apiserver unreachable from the agent: {e}")
            return
        try:
            await stream.send_head({
                "status": response.status_code,
                "headers": [(k, v) for k, v in response.headers.items()
                            if k.lower() not in _HOP_BY_HOP],
            })
            async for chunk in response.aiter_raw():
                await stream.send(chunk)
            await stream.send_end()
        finally:
            await response.aclose()
