"""Live push of newly stored events: WebSocket ``/v1/live`` and Server-Sent Events ``/v1/live/sse``."""

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import WebSocket, WebSocketDisconnect

from emostream.store import EventStore

HEARTBEAT_S = 15.0


def _wanted(doc: str, streams: set[str] | None) -> bool:
    return streams is None or json.loads(doc).get("stream_id") in streams


async def sse_stream(store: EventStore, streams: set[str] | None, is_disconnected) -> AsyncIterator[str]:
    """``data: <event JSON>`` records, with a comment heartbeat when idle."""
    last_sent = time.monotonic()
    yield ": connected\n\n"
    async for doc in store.live():
        if await is_disconnected():
            return
        if doc is not None and _wanted(doc, streams):
            last_sent = time.monotonic()
            yield f"event: emotion\ndata: {doc}\n\n"
        elif time.monotonic() - last_sent > HEARTBEAT_S:
            last_sent = time.monotonic()
            yield ": ping\n\n"


async def websocket_stream(ws: WebSocket, store: EventStore, streams: set[str] | None,
                           max_queue: int = 1000) -> None:
    """Forward events to one client; a slow client loses the oldest queued events, not memory."""
    await ws.accept()
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max_queue)
    dropped = 0

    async def pump() -> None:
        nonlocal dropped
        async for doc in store.live():
            if doc is None or not _wanted(doc, streams):
                continue
            if queue.full():
                queue.get_nowait()
                dropped += 1
            queue.put_nowait(doc)

    async def send() -> None:
        while True:
            await ws.send_text(await queue.get())

    async def receive() -> None:
        while True:
            await ws.receive_text()  # raises WebSocketDisconnect when the client leaves

    tasks = [asyncio.create_task(t()) for t in (pump, send, receive)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
