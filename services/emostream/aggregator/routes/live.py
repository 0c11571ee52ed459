"""Live push of newly stored events: Server-Sent Events and a WebSocket, through the one hub."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from emostream.aggregator.auth import key_allowed
from emostream.aggregator.deps import Context, ReadScope
from emostream.aggregator.live.push import first_message_key, sse_stream, websocket_stream

StreamFilter = Annotated[list[str] | None, Query()]
router = APIRouter(prefix="/v1/live")


@router.get("/sse", dependencies=[ReadScope])
async def live_sse(request: Request, ctx: Context, stream_id: StreamFilter = None):
    """Server-Sent Events: each newly stored event (filter with repeated ``stream_id``)."""
    hub = ctx.hub
    client = await hub.join(set(stream_id) if stream_id else None)
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
    ws: WebSocket, ctx: Context, stream_id: StreamFilter = None, api_key: str | None = None
) -> None:
    """WebSocket: each newly stored event as a JSON text message.

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
    await websocket_stream(ws, ctx.hub, set(stream_id) if stream_id else None)
