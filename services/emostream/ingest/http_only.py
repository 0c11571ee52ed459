"""`emostream ingest --source http`: only the HTTP server, no pull source."""

from __future__ import annotations

import asyncio
import time

from emostream.config import IngestSettings
from emostream.errors import ConfigError
from emostream.ingest.http_server import PORT_FIX, check_http_bind, ingest_http_server
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers


async def run_http_only(settings: IngestSettings) -> int:
    """Serve frames over HTTP until SIGTERM/SIGINT."""
    opts = settings.ingest
    if not opts.http.port:
        raise ConfigError(f"--source http needs the ingest HTTP server: {PORT_FIX}")
    check_http_bind(opts)
    await check_connection(settings.kafka)  # a refused TLS handshake or login: one error
    await ensure_topics(settings.kafka)
    stop = asyncio.Event()
    limits = settings.http_server
    async with ingest_http_server(settings.kafka, opts, limits=limits) as publisher:
        install_stop_handlers(stop.set)

        def live() -> tuple[bool, dict]:
            return True, {"in_flight": publisher.in_flight, "at": time.time()}

        def ready() -> tuple[bool, dict]:
            return publisher.started, {"sent": publisher.sent, "failed": publisher.failed}

        port = opts.metrics_port
        async with health_server("ingest", live, ready, opts.metrics_host, port, limits):
            await stop.wait()
    return 0 if publisher.failed == 0 else 1
