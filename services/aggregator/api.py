"""The aggregator's HTTP API (FastAPI): health, streams, per-stream state, events, sessions, rules."""
import time
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from redis.exceptions import RedisError
from prometheus_client import make_asgi_app

from emostream.frames import STREAM_ID_RE
from emostream.rule_store import RuleStore
from emostream.services.aggregator.auth import key_allowed, require_scope
from emostream.services.aggregator.limits import BodySizeLimit
from emostream.services.aggregator.live import sse_stream, websocket_stream
from emostream.services.aggregator.rules_api import rules_router
from emostream.services.config import AlertOptions
from emostream.store import MAX_WINDOW_S, EventStore

DASHBOARD = FilePath(__file__).parent / "static" / "dashboard.html"
StreamId = Annotated[str, Path(pattern=STREAM_ID_RE.pattern, description="Stream id")]
SessionId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="Session id")]


def create_app(
    store: EventStore,
    max_events_limit: int = 500,
    consumer: Any = None,
    read_keys: list | None = None,
    admin_keys: list | None = None,
    *,
    alerts: AlertOptions | None = None,
    max_body_bytes: int = 64 * 1024,
) -> FastAPI:
    """Build the app around a started store (and, optionally, the consumer for readiness)."""
    app = FastAPI(title="emostream aggregator", version="1", docs_url="/docs")
    read = Depends(require_scope("read", read_keys or [], admin_keys or []))
    admin = Depends(require_scope("admin", read_keys or [], admin_keys or []))
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.mount("/metrics", make_asgi_app())
    webhooks_enabled = (alerts or AlertOptions()).webhook_secret is not None
    app.include_router(rules_router(RuleStore(store), read, admin, webhooks_enabled,
                                    store.settings.max_deliveries_per_rule))
    max_sessions = store.settings.max_sessions_per_stream

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse({"detail": "state store (Redis) unavailable, retry shortly"},
                            status_code=503, headers={"Retry-After": "2"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        """Live per-stream timelines and current tracks; no images. Data needs a read key."""
        return HTMLResponse(DASHBOARD.read_text())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        redis_ok = await store.ping()
        consuming = consumer is None or consumer.assigned
        body = {"status": "ok" if redis_ok else "degraded", "redis": redis_ok, "consuming": consuming}
        return JSONResponse(body, status_code=200 if redis_ok else 503)

    @app.get("/v1/streams", dependencies=[read])
    async def streams() -> dict:
        items = await store.list_streams()
        return {"streams": items, "count": len(items)}

    @app.get("/v1/streams/{stream_id}/state", dependencies=[read])
    async def state(stream_id: StreamId) -> dict:
        found = await store.stream_state(stream_id)
        if found is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        return found

    @app.get("/v1/streams/{stream_id}/events", dependencies=[read])
    async def events(
        stream_id: StreamId,
        limit: Annotated[int, Query(ge=1, le=max_events_limit)] = 50,
    ) -> dict:
        items = await store.recent_events(stream_id, limit)
        if not items and await store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        return {"stream_id": stream_id, "events": items, "count": len(items)}

    @app.get("/v1/streams/{stream_id}/windows", dependencies=[read])
    async def windows(
        stream_id: StreamId,
        window_s: Annotated[list[int] | None, Query(description="seconds, 1-3600; repeatable")] = None,
    ) -> dict:
        """Rolling windows over capture time: event counts and mean probabilities."""
        sizes = window_s or [10, 60, 300]
        if any(not 1 <= w <= MAX_WINDOW_S for w in sizes) or len(sizes) > 10:
            raise HTTPException(422, detail=f"window_s must be 1-{MAX_WINDOW_S}, at most 10 of them")
        if await store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        now_ms = int(time.time() * 1000)
        return {"stream_id": stream_id, "windows": await store.windows(stream_id, sizes, now_ms)}

    @app.get("/v1/streams/{stream_id}/tracks", dependencies=[read])
    async def tracks(
        stream_id: StreamId,
        active_within_s: Annotated[float, Query(gt=0, le=3600)] = 5.0,
    ) -> dict:
        """Face tracks seen recently, each with its latest raw and smoothed emotion."""
        if await store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        items = await store.tracks(stream_id, active_within_s, int(time.time() * 1000))
        return {"stream_id": stream_id, "tracks": items, "count": len(items)}

    @app.get("/v1/streams/{stream_id}/sessions", dependencies=[read])
    async def sessions(
        stream_id: StreamId,
        limit: Annotated[int, Query(ge=1, le=max_sessions)] = 20,
    ) -> dict:
        """Activity sessions, newest first; one ends after the configured gap without events."""
        if await store.stream_state(stream_id) is None:
            raise HTTPException(404, detail=f"unknown stream {stream_id!r}")
        items = await store.sessions(stream_id, limit, int(time.time() * 1000))
        return {"stream_id": stream_id, "session_gap_seconds": store.settings.session_gap_seconds,
                "sessions": items, "count": len(items)}

    @app.get("/v1/streams/{stream_id}/sessions/{session_id}", dependencies=[read])
    async def session(stream_id: StreamId, session_id: SessionId) -> dict:
        found = await store.session(stream_id, session_id, int(time.time() * 1000))
        if found is None:
            raise HTTPException(404, detail=f"unknown session {session_id!r} of {stream_id!r}")
        return found

    @app.get("/v1/live/sse", dependencies=[read])
    async def live_sse(request: Request, stream_id: Annotated[list[str] | None, Query()] = None):
        """Server-Sent Events: each newly stored event (filter with repeated ``stream_id``)."""
        streams = set(stream_id) if stream_id else None
        return StreamingResponse(sse_stream(store, streams, request.is_disconnected),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.websocket("/v1/live")
    async def live_ws(ws: WebSocket, stream_id: Annotated[list[str] | None, Query()] = None,
                      api_key: str | None = None) -> None:
        """WebSocket: each newly stored event as a JSON text message. Key: X-API-Key or ?api_key=."""
        key = ws.headers.get("x-api-key") or api_key
        if not key_allowed(key, "read", read_keys or [], admin_keys or []):
            await ws.accept()  # then close with a reason the client can read
            await ws.close(code=4401, reason="missing or invalid API key")
            return
        await websocket_stream(ws, store, set(stream_id) if stream_id else None)

    return app
