"""Live push of newly stored events: Server-Sent Events and a WebSocket, through the one hub."""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from emostream.aggregator.api.auth import key_allowed
from emostream.aggregator.api.deps import Context, ReadScope
from emostream.aggregator.live.push import sse_stream, websocket_stream
from emostream.runtime.websocket import first_message_key

StreamFilter = Annotated[list[str] | None, Query()]
KindFilter = Annotated[
    list[Literal["event", "change", "alert"]] | None,
    Query(
        description="Message types, repeatable. Without it: events only, each the bare "
        'event document; with it: every message is {"type", "stream_id", "data"} (SSE: the '
        "record's event name is emotion, change or alert)"
    ),
]
router = APIRouter(prefix="/v1/live")


@router.get("/sse", dependencies=[ReadScope])
async def live_sse(
    request: Request,
    ctx: Context,
    stream_id: StreamFilter = None,
    kind: KindFilter = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
):
    """Server-Sent Events: each newly stored event (filter with repeated ``stream_id``), and
    the stable-emotion changes and alerts when ``kind`` asks for them; ``data`` is what the
    WebSocket sends. Each record has an ``id:``; a client reconnecting with ``Last-Event-ID``
    (browsers' EventSource does) first gets what it missed, from the last 10,000 messages of
    this replica while its subscription lasted (it outlives the last client by 60 s), else an
    ``event: gap`` record."""
    hub = ctx.hub
    client = await hub.join(
        set(stream_id) if stream_id else None, set(kind) if kind else None, last_event_id
    )
    if client is None:
        raise HTTPException(
            503,
            detail=f"too many live clients (at most {hub.max_clients})",
            headers={"Retry-After": "5"},
        )
    return StreamingResponse(
        sse_stream(hub, client, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
        background=BackgroundTask(hub.leave, client),
    )


@router.websocket("")
async def live_ws(
    ws: WebSocket,
    ctx: Context,
    stream_id: StreamFilter = None,
    api_key: str | None = None,
    kind: KindFilter = None,
) -> None:
    """WebSocket: each newly stored event as a JSON text message; with ``kind``, typed
    ``{"type": "event"|"change"|"alert", "stream_id", "data"}`` messages of those kinds.

    Key: ``X-API-Key``, ``?api_key=`` or, from browsers (no URL that logs keep), a first
    message ``{"api_key": "..."}`` within 5 s.
    """
    key = ws.headers.get("x-api-key") or api_key
    await ws.accept()  # then a refusal can carry a reason the client can read
    if key is None and (ctx.read_keys or ctx.admin_keys):
        key = await first_message_key(ws)
    if not key_allowed(key, "read", ctx.read_keys, ctx.admin_keys):
        await ws.close(code=4401, reason="missing or invalid API key")
        return
    await websocket_stream(
        ws, ctx.hub, set(stream_id) if stream_id else None, set(kind) if kind else None
    )
