"""The aggregator's HTTP API (FastAPI): health, streams, per-stream state, events, sessions, rules."""

import math
import time
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from prometheus_client import make_asgi_app
from redis.exceptions import RedisError
from starlette.background import BackgroundTask

from emostream.aggregator import log_redaction
from emostream.aggregator.auth import is_admin, key_allowed, require_scope
from emostream.aggregator.dashboard_policy import dashboard_csp
from emostream.aggregator.limits import BodySizeLimit
from emostream.aggregator.live.hub import LiveHub
from emostream.aggregator.live.push import first_message_key, sse_stream, websocket_stream
from emostream.aggregator.origin_check import BrowserChecks
from emostream.aggregator.routes.rules import rules_router
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import MAX_WINDOW_S, EventStore
from emostream.config import AlertOptions
from emostream.frames import STREAM_ID_RE

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
    max_live_clients: int = 200,
    local_hosts_only: bool = False,
    bind_host: str | None = None,
) -> FastAPI:
    """Build the app around a started store (and, optionally, the consumer for readiness).

    Live clients share one Redis subscription (``app.state.live_hub``; the caller stops it).
    ``local_hosts_only`` (keyless mode): requests must name this machine in ``Host``.
    """
    log_redaction.install()
    app = FastAPI(title="emostream aggregator", version="1", docs_url="/docs")
    app.add_middleware(BrowserChecks, local_hosts_only=local_hosts_only, bind_host=bind_host)
    hub = LiveHub(store.settings, max_clients=max_live_clients)
    app.state.live_hub = hub
    read = Depends(require_scope("read", read_keys or [], admin_keys or []))
    admin = Depends(require_scope("admin", read_keys or [], admin_keys or []))
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.mount("/metrics", make_asgi_app())
    webhooks_enabled = (alerts or AlertOptions()).webhook_secret is not None
    app.include_router(
        rules_router(
            RuleStore(store),
            read,
            admin,
            webhooks_enabled,
            store.settings.max_deliveries_per_rule,
            is_admin=lambda key: is_admin(key, read_keys or [], admin_keys or []),
        )
    )
    max_sessions = store.settings.max_sessions_per_stream

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the input, and JSON cannot carry NaN or Infinity (a 500).
        return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse(
            {"detail": "state store (Redis) unavailable, retry shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        """Live per-stream timelines and current tracks; no images. Data needs a read key."""
        page = DASHBOARD.read_text()
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": dashboard_csp(page),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        redis_ok = await store.ping()
        consuming = consumer is None or consumer.assigned
        webhooks = getattr(consumer, "webhooks", None)
        senders = webhooks.health() if webhooks is not None else {"ok": True}
        ok = redis_ok and senders["ok"]
        body = {
            "status": "ok" if ok else "degraded",
            "redis": redis_ok,
            "consuming": consuming,
            "webhooks": senders,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/streams", dependencies=[read])
    async def streams(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[
            str | None,
            Query(
                pattern=r"^[0-9.e+-]{1,32}:[A-Za-z0-9._:-]{0,128}$",
                description="next_cursor of the previous page",
            ),
        ] = None,
    ) -> dict:
        """Streams, most recently active first, a page at a time; idle ones leave after
        ``EMOSTREAM_REDIS__STREAM_TTL_S``."""
        items, next_cursor = await store.streams_page(limit, cursor)
        return {"streams": items, "count": len(items), "next_cursor": next_cursor}

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
        window_s: Annotated[
            list[int] | None, Query(description="seconds, 1-3600; repeatable")
        ] = None,
    ) -> dict:
        """Rolling windows over capture time: event counts and mean probabilities."""
        sizes = window_s or [10, 60, 300]
        if any(not 1 <= w <= MAX_WINDOW_S for w in sizes) or len(sizes) > 10:
            raise HTTPException(
                422, detail=f"window_s must be 1-{MAX_WINDOW_S}, at most 10 of them"
            )
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
        return {
            "stream_id": stream_id,
            "session_gap_seconds": store.settings.session_gap_seconds,
            "sessions": items,
            "count": len(items),
        }

    @app.get("/v1/streams/{stream_id}/sessions/{session_id}", dependencies=[read])
    async def session(stream_id: StreamId, session_id: SessionId) -> dict:
        found = await store.session(stream_id, session_id, int(time.time() * 1000))
        if found is None:
            raise HTTPException(404, detail=f"unknown session {session_id!r} of {stream_id!r}")
        return found

    @app.get("/v1/live/sse", dependencies=[read])
    async def live_sse(request: Request, stream_id: Annotated[list[str] | None, Query()] = None):
        """Server-Sent Events: each newly stored event (filter with repeated ``stream_id``)."""
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

    @app.websocket("/v1/live")
    async def live_ws(
        ws: WebSocket,
        stream_id: Annotated[list[str] | None, Query()] = None,
        api_key: str | None = None,
    ) -> None:
        """WebSocket: each newly stored event as a JSON text message.

        Key: ``X-API-Key``, ``?api_key=`` or, from browsers (no URL that logs keep), a first
        message ``{"api_key": "..."}`` within 5 s.
        """
        key = ws.headers.get("x-api-key") or api_key
        await ws.accept()  # then a refusal can carry a reason the client can read
        if key is None and (read_keys or admin_keys):
            key = await first_message_key(ws)
        if not key_allowed(key, "read", read_keys or [], admin_keys or []):
            await ws.close(code=4401, reason="missing or invalid API key")
            return
        await websocket_stream(ws, hub, set(stream_id) if stream_id else None)

    return app


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as strings, so that it can be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
