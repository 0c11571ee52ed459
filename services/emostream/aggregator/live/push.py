"""Live push of newly stored events: WebSocket ``/v1/live`` and Server-Sent Events ``/v1/live/sse``.

Both read from the aggregator's one ``LiveHub`` subscription through a bounded, drop-oldest
queue per client, so a stalled reader costs at most ``max_queue`` events of memory here and
nothing in Redis.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import WebSocket, WebSocketDisconnect

from emostream.aggregator.live.hub import LiveClient, LiveHub

HEARTBEAT_S = 15.0
AUTH_TIMEOUT_S = 5.0  # for the first-message key
POLL_S = 1.0  # how often an idle SSE stream checks for a disconnected client


async def sse_stream(
    hub: LiveHub, client: LiveClient, is_disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """``data: <event JSON>`` records, with a comment heartbeat when idle."""
    try:
        last_sent = time.monotonic()
        yield ": connected\n\n"
        while True:
            doc = await client.next(POLL_S)
            if await is_disconnected():
                return
            if doc is not None:
                last_sent = time.monotonic()
                yield f"event: emotion\ndata: {doc}\n\n"
            elif time.monotonic() - last_sent > HEARTBEAT_S:
                last_sent = time.monotonic()
                yield ": ping\n\n"
    finally:
        await hub.leave(client)


async def first_message_key(ws: WebSocket, timeout_s: float = AUTH_TIMEOUT_S) -> str | None:
    """The ``api_key`` of a first ``{"api_key": "..."}`` message; None if none comes in time."""
    try:
        doc = json.loads(await asyncio.wait_for(ws.receive_text(), timeout_s))
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
        return None
    key = doc.get("api_key") if isinstance(doc, dict) else None
    return key if isinstance(key, str) and key else None


async def websocket_stream(ws: WebSocket, hub: LiveHub, streams: set[str] | None) -> None:
    """Forward events to one (accepted) client; refused with 1013 when the hub is full."""
    client = await hub.join(streams)
    if client is None:
        await ws.close(code=1013, reason=f"too many live clients (at most {hub.max_clients})")
        return

    async def send() -> None:
        while True:
            doc = await client.next(HEARTBEAT_S)
            if doc is not None:
                await ws.send_text(doc)

    async def receive() -> None:
        while True:
            await ws.receive_text()  # raises WebSocketDisconnect when the client leaves

    tasks = [asyncio.create_task(t()) for t in (send, receive)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.leave(client)
