"""`emostream ingest`."""

from __future__ import annotations

import structlog

from emostream import tracing
from emostream.config import IngestSettings, masked_dump
from emostream.ingest.fleet_main import FLEET_SOURCE, run_fleet
from emostream.ingest.http_only import run_http_only
from emostream.ingest.http_server import HTTP_ONLY_SOURCE, check_http_bind, ingest_http_server
from emostream.ingest.runner import Ingest
from emostream.ingest.sources import probe_source
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets

log = structlog.get_logger(__name__)


async def run_ingest(settings: IngestSettings) -> int:
    log.info("config", **masked_dump(settings))
    refuse_placeholder_secrets(settings, settings.reached_hosts())
    tracing.configure_tracing("ingest")  # OTEL_TRACES_EXPORTER; none by default
    opts = settings.ingest
    if opts.source == HTTP_ONLY_SOURCE:
        return await run_http_only(settings)
    if opts.source == FLEET_SOURCE:
        return await run_fleet(settings)
    check_http_bind(opts)
    probe_source(settings.ingest.source)  # a file that decodes to nothing: one error, at once
    await check_connection(settings.kafka)  # a refused TLS handshake or login: one error
    await ensure_topics(settings.kafka)
    async with (
        ingest_http_server(settings.kafka, opts, limits=settings.http_server),
        Ingest(settings.kafka, opts) as ingest,
    ):
        install_stop_handlers(ingest.request_stop)
        async with health_server(
            "ingest",
            ingest.liveness(opts.liveness_timeout_s),
            ingest.readiness,
            opts.metrics_host,
            opts.metrics_port,
            settings.http_server,
        ):
            await ingest.run()
    return 0 if ingest.failed == 0 else 1
