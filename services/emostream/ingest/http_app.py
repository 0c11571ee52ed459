"""The ingest HTTP server (FastAPI): frames by POST or WebSocket, and the ``/capture`` page.

Write keys (``EMOSTREAM_INGEST__API_KEYS``) are a scope of their own: read or admin keys of the
aggregator do not write frames, and an ingest key reads nothing. Without keys the server is
open and only binds to loopback (``emostream.runtime.api_keys.check_bind``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Request, WebSocket
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from emostream import metrics, tracing
from emostream.config import IngestOptions
from emostream.frames import STREAM_ID_RE
from emostream.ingest.capture_page import capture_routes
from emostream.ingest.http_frames import (
    FrameRefused,
    check_frame,
    frame_limit,
    frame_meta,
    read_body,
)
from emostream.ingest.http_publish import FramePublisher, IngestBusy
from emostream.ingest.http_ws import IngestSession
from emostream.ingest.openapi_doc import install_ingest_openapi
from emostream.ingest.stream_seq import StreamCounters
from emostream.runtime.api_keys import key_allowed
from emostream.runtime.origin_check import BrowserChecks
from emostream.runtime.websocket import first_message_key

StreamId = Annotated[str, Path(pattern=STREAM_ID_RE.pattern, description="Stream id")]
STATIC = FilePath(__file__).parent / "static"


def create_ingest_app(publisher: FramePublisher, options: IngestOptions) -> FastAPI:
    """Build the app around a started publisher."""
    http, keys = options.http, options.api_keys
    max_bytes = frame_limit(http, publisher.max_message_bytes)
    app = FastAPI(title="emostream ingest", version="1", docs_url="/docs")
    app.add_middleware(
        BrowserChecks,
        local_hosts_only=not keys,
        bind_host=http.host,
        allowed_origins=http.browser_origins,
    )
    app.mount("/metrics", make_asgi_app())
    app.include_router(capture_routes(STATIC, http.aggregator_url))
    counters = StreamCounters(publisher.run_id)  # for clients that send no seq (bounded)
    write_key = _write_key(keys)
    _error_answers(app)

    @app.post("/v1/streams/{stream_id}/frames", status_code=202, dependencies=[Depends(write_key)])
    async def post_frame(
        request: Request,
        stream_id: StreamId,
        seq: str | None = None,
        captured_ms: str | None = None,
        x_emostream_seq: str | None = Header(default=None),
        x_emostream_captured_ms: str | None = Header(default=None),
        x_emostream_run: str | None = Header(default=None),
        live: bool = True,
    ) -> dict:
        """One JPEG or PNG frame as the body; answered once Kafka acknowledged it."""
        if not publisher.has_room():  # before reading the body: a busy server reads nothing
            raise IngestBusy(publisher.in_flight, publisher.retry_after_s)
        payload = await read_body(request, max_bytes)  # 413 before reading past the limit
        content_type = await check_frame(payload, max_bytes)
        meta = frame_meta(
            stream_id,
            x_emostream_seq or seq,
            x_emostream_captured_ms or captured_ms,
            x_emostream_run,
            live,
            counters,
        )
        # The server's span when FastAPI records one, else the client's traceparent, if sent
        parent = tracing.current() or tracing.extract(request.headers.get("traceparent"))
        fut = await publisher.publish(meta, payload, content_type, parent)
        where = await _acknowledged(fut, http.ack_timeout_s)
        metrics.INGEST_HTTP_FRAMES.labels("accepted").inc()
        return {"stream_id": stream_id, "seq": meta.seq, "captured_ms": meta.captured_ms, **where}

    _websocket_route(app, publisher, options, max_bytes)
    install_ingest_openapi(app)  # the key scheme, the image body, every status
    return app


def _write_key(keys: list) -> Callable:
    """A dependency: 401 without a valid write key (nobody is refused in keyless mode)."""

    async def write_key(x_api_key: str | None = Header(default=None)) -> None:
        if not key_allowed(x_api_key, keys):
            detail = "missing X-API-Key header" if x_api_key is None else "invalid API key"
            raise HTTPException(401, detail=detail, headers={"WWW-Authenticate": "ApiKey"})

    return write_key


def _error_answers(app: FastAPI) -> None:
    @app.exception_handler(FrameRefused)
    async def refused(_request: Request, exc: FrameRefused) -> JSONResponse:
        metrics.INGEST_HTTP_FRAMES.labels("refused").inc()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(IngestBusy)
    async def busy(_request: Request, exc: IngestBusy) -> JSONResponse:
        metrics.INGEST_HTTP_FRAMES.labels("busy").inc()
        headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)


def _websocket_route(
    app: FastAPI, publisher: FramePublisher, options: IngestOptions, max_bytes: int
) -> None:
    http, keys = options.http, options.api_keys

    @app.websocket("/v1/streams/{stream_id}/ingest")
    async def ingest_ws(ws: WebSocket, stream_id: StreamId) -> None:
        """Binary messages, one frame each; key in ``X-API-Key`` or a first JSON message."""
        key = ws.headers.get("x-api-key")
        await ws.accept()  # then a refusal can carry a reason the client can read
        if key is None and keys:
            key = await first_message_key(ws)
        if not key_allowed(key, keys):
            await ws.close(code=4401, reason="missing or invalid API key")
            return
        queue_frames = http.ws_queue_frames
        await IngestSession(ws, stream_id, publisher, max_bytes, queue_frames).run()


async def _acknowledged(fut: asyncio.Future, timeout_s: float) -> dict:
    """Partition and offset once Kafka acknowledged; 504 past ``timeout_s``, 503 on failure."""
    try:
        record = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
    except TimeoutError:
        raise HTTPException(504, detail="Kafka did not acknowledge the frame in time") from None
    except Exception as exc:  # noqa: BLE001 - any send failure is one 503 for this frame
        raise HTTPException(503, detail=f"Kafka send failed: {exc}") from None
    return {
        "partition": getattr(record, "partition", None),
        "offset": getattr(record, "offset", None),
    }
