"""`emostream ingest`: one run for every kind of source, the HTTP frame server beside it.

``--source http``: the HTTP server only; ``fleet`` (what ``--source`` unset runs): the cameras
the registry assigns this member; anything else: one pull source (file, folder, webcam, URL).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from emostream import tracing
from emostream.config import IngestSettings, masked_dump
from emostream.errors import ConfigError
from emostream.ingest.fleet import Fleet
from emostream.ingest.http_publish import FramePublisher
from emostream.ingest.http_server import PORT_FIX, check_http_bind, ingest_http_server
from emostream.ingest.runner import Ingest
from emostream.ingest.sources import probe_source
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.component import Component
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets

log = structlog.get_logger(__name__)
HTTP_ONLY_SOURCE = "http"  # no pull source, only frames sent over HTTP
FLEET_SOURCE = "fleet"


class HttpOnly(Component):
    """``--source http``: nothing to pull; waits for a stop while the HTTP server takes frames."""

    def __init__(self, publisher: FramePublisher) -> None:
        self.publisher = publisher
        self._stop_requested = asyncio.Event()

    @property
    def failed(self) -> int:
        return self.publisher.failed

    def request_stop(self) -> None:
        self._stop_requested.set()

    def liveness(self, _timeout_s: float):
        return lambda: (True, {"in_flight": self.publisher.in_flight, "at": time.time()})

    def readiness(self) -> tuple[bool, dict]:
        return self.publisher.started, {"sent": self.publisher.sent, "failed": self.failed}

    async def run(self) -> None:
        await self._stop_requested.wait()


async def run_ingest(settings: IngestSettings) -> int:
    log.info("config", **masked_dump(settings))
    refuse_placeholder_secrets(settings, settings.reached_hosts())
    tracing.configure_tracing("ingest")  # OTEL_TRACES_EXPORTER; none by default
    opts = settings.ingest
    if opts.source == HTTP_ONLY_SOURCE and not opts.http.port:
        raise ConfigError(f"--source http needs the ingest HTTP server: {PORT_FIX}")
    check_http_bind(opts)
    if opts.source not in (HTTP_ONLY_SOURCE, FLEET_SOURCE):
        probe_source(opts.source)  # a file that decodes to nothing: one error, at once
    await check_connection(settings.kafka)  # a refused TLS handshake or login: one error
    await ensure_topics(settings.kafka)
    async with ingest_http_server(settings.kafka, opts, limits=settings.http_server) as publisher:
        source: HttpOnly | Fleet | Ingest
        if opts.source == HTTP_ONLY_SOURCE:
            assert publisher is not None  # the port was checked above
            source = HttpOnly(publisher)
        elif opts.source == FLEET_SOURCE:
            source = Fleet(settings.kafka, settings.fleet, settings.redis, opts.jpeg_quality)
        else:
            source = Ingest(settings.kafka, opts)
        async with source:
            install_stop_handlers(source.request_stop)
            async with health_server(
                "ingest",
                source.liveness(opts.liveness_timeout_s),
                source.readiness,
                opts.metrics_host,
                opts.metrics_port,
                settings.http_server,
            ):
                await source.run()
    failed = 0 if isinstance(source, Fleet) else source.failed  # a fleet's cameras say their own
    return 0 if failed == 0 else 1
