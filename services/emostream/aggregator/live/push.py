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

SSE_NAMES = {"event": "emotion", "change": "change", "alert": "alert"}  # SSE ``event:`` names
HEARTBEAT_S = 15.0
POLL_S = 1.0  # how often an idle SSE stream checks for a disconnected client
RETRY_MS = 1000  # the reconnect delay SSE clients are told
GAP = json.dumps(
    {"detail": "Last-Event-ID is outside the replay window: read the missed items from the API"}
)


async def sse_stream(
    hub: LiveHub, client: LiveClient, is_disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """``id: <event id>`` + ``event: emotion|change|alert`` + ``data: <the WebSocket message>``
    records, a comment heartbeat when idle. A resume that cannot be served whole starts with
    ``event: gap`` (read what was missed from the paged API)."""
    try:
        last_sent = time.monotonic()
        yield f": connected\nretry: {RETRY_MS}\n\n"
        if client.gap:
            yield f"event: gap\ndata: {GAP}\n\n"
        while True:
            item = await client.next_message(POLL_S)
            if await is_disconnected():
                return
            if item is not None:
                last_sent = time.monotonic()
                event_id, kind, text = item
                yield f"id: {event_id}\nevent: {SSE_NAMES[kind]}\ndata: {text}\n\n"
            elif time.monotonic() - last_sent > HEARTBEAT_S:
                last_sent = time.monotonic()
                yield ": ping\n\n"
    finally:
        await hub.leave(client)


async def websocket_stream(
    ws: WebSocket, hub: LiveHub, streams: set[str] | None, kinds: set[str] | None = None
) -> None:
    """Forward live messages to one (accepted) client; refused with 1013 when the hub is full."""
    client = await hub.join(streams, kinds)
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
