"""The aggregator's ``/metrics``: on the API port (open, or behind a read key), or on a port of
its own (``EMOSTREAM_API__METRICS__PORT``, loopback by default) with ``/livez`` and ``/readyz``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from pydantic import SecretStr

from emostream.aggregator.api.auth import key_allowed
from emostream.metrics_options import ApiMetricsOptions
from emostream.runtime.health import health_app
from emostream.runtime.lifecycle import ApiServer

PORT_FIX = "set EMOSTREAM_API__METRICS__PORT (0: /metrics on the API port)"


def mount_metrics(
    app: FastAPI,
    options: ApiMetricsOptions,
    read_keys: list[SecretStr],
    admin_keys: list[SecretStr],
) -> None:
    """Mount ``/metrics`` on the API unless it has a port of its own."""
    if options.port:
        return
    metrics: Any = make_asgi_app()
    if options.needs_key and (read_keys or admin_keys):
        metrics = _with_read_key(metrics, read_keys, admin_keys)
    app.mount("/metrics", metrics)


def _with_read_key(inner: Any, read_keys: list[SecretStr], admin_keys: list[SecretStr]) -> Any:
    async def guarded(scope, receive, send) -> None:
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-api-key")
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if raw is None and scheme.lower() == b"bearer":
            raw = token.strip()
        key = raw.decode("latin-1") if raw is not None else None
        if not key_allowed(key, "read", read_keys, admin_keys):
            detail = "metrics need a read key (X-API-Key or Authorization: Bearer)"
            refused = JSONResponse(
                {"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await refused(scope, receive, send)
            return
        await inner(scope, receive, send)

    return guarded


@asynccontextmanager
async def metrics_server(
    options: ApiMetricsOptions,
    consumer: Any,
    **server_args: Any,
) -> AsyncIterator[None]:
    """Serve ``/metrics``, ``/livez`` and ``/readyz`` on ``options.port`` for the block (0: none).

    Ready: Redis answered the consumer's last write and it holds partitions. ``server_args``
    go to ``ApiServer`` (its limits)."""
    if not options.port:
        yield
        return

    def live() -> tuple[bool, dict]:
        return True, {}

    def ready() -> tuple[bool, dict]:
        ok = bool(getattr(consumer, "redis_ok", True) and getattr(consumer, "assigned", True))
        return ok, {"redis": getattr(consumer, "redis_ok", None)}

    app = health_app("aggregator", live, ready)
    async with ApiServer(
        app, options.host, options.port, "aggregator metrics", PORT_FIX, **server_args
    ):
        yield
