"""The aggregator's HTTP API (FastAPI): health, streams, per-stream state and recent events."""


from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from prometheus_client import make_asgi_app

from emostream.frames import STREAM_ID_RE
from emostream.services.aggregator.auth import require_scope
from emostream.store import EventStore

StreamId = Annotated[str, Path(pattern=STREAM_ID_RE.pattern, description="Stream id")]


def create_app(
    store: EventStore,
    max_events_limit: int = 500,
    consumer: Any = None,
    read_keys: list | None = None,
    admin_keys: list | None = None,
) -> FastAPI:
    """Build the app around a started store (and, optionally, the consumer for readiness)."""
    app = FastAPI(title="emostream aggregator", version="1", docs_url="/docs")
    read = Depends(require_scope("read", read_keys or [], admin_keys or []))
    app.mount("/metrics", make_asgi_app())

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse({"detail": "state store (Redis) unavailable, retry shortly"},
                            status_code=503, headers={"Retry-After": "2"})

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

    return app
