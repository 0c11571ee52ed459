"""Health and metrics HTTP endpoints for services without an API (worker, ingest).

``/livez``: the service's main loop made progress recently (a stuck loop fails it, and an
orchestrator restarts the process); ``/readyz``: connected and doing its job (a worker has
partitions assigned); ``/metrics``: Prometheus. Served by uvicorn inside the service's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from emostream.settings import HttpServerOptions

Check = Callable[[], tuple[bool, dict]]
log = structlog.get_logger(__name__)


def health_app(service: str, live: Check, ready: Check) -> FastAPI:
    app = FastAPI(
        title=f"emostream {service} health", docs_url=None, redoc_url=None, openapi_url=None
    )

    def answer(check: Check) -> JSONResponse:
        ok, detail = check()
        return JSONResponse(
            {"status": "ok" if ok else "failing", "service": service, **detail},
            status_code=200 if ok else 503,
        )

    @app.get("/livez")
    async def livez() -> JSONResponse:
        return answer(live)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return answer(ready)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def progress_check(
    last_progress: Callable[[], float], now: Callable[[], float], timeout_s: float
) -> Check:
    """Live while the loop's last progress is under ``timeout_s`` old."""

    def check() -> tuple[bool, dict]:
        age = now() - last_progress()
        return age < timeout_s, {"last_progress_s": round(age, 3), "timeout_s": timeout_s}

    return check


@asynccontextmanager
async def health_server(
    service: str,
    live: Check,
    ready: Check,
    host: str,
    port: int,
    limits: HttpServerOptions | None = None,
) -> AsyncIterator[None]:
    """Serve ``health_app`` on ``host:port`` for the duration of the block; port 0: nothing."""
    if not port:
        yield
        return
    from emostream.runtime.lifecycle import ApiServer

    fix = f"set EMOSTREAM_{service.upper()}__METRICS_PORT (0 disables)"
    app = health_app(service, live, ready)
    async with ApiServer(app, host, port, f"{service} metrics", fix, limits=limits):
        log.info(
            "health listening", service=service, port=port, paths=["/metrics", "/livez", "/readyz"]
        )
        yield
