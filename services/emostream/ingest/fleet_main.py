"""`emostream ingest` as a member of the camera fleet (``--source`` unset, or ``fleet``).

The HTTP frame server (``EMOSTREAM_INGEST__HTTP__PORT``) runs beside it, as with any source.
"""

from __future__ import annotations

import structlog

from emostream.config import IngestSettings
from emostream.ingest.fleet import Fleet
from emostream.ingest.http_server import check_http_bind, ingest_http_server
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers

log = structlog.get_logger(__name__)
FLEET_SOURCE = "fleet"


async def run_fleet(settings: IngestSettings) -> int:
    opts = settings.ingest
    check_http_bind(opts)
    await check_connection(settings.kafka)
    await ensure_topics(settings.kafka)
    fleet = Fleet(settings.kafka, settings.fleet, settings.redis, opts.jpeg_quality)
    # Frames over HTTP (EMOSTREAM_INGEST__HTTP__PORT) are served beside the fleet's cameras.
    async with ingest_http_server(settings.kafka, opts, limits=settings.http_server), fleet:
        install_stop_handlers(fleet.request_stop)
        log.info("fleet ingest started", ingest=fleet.ingest_id, group=settings.fleet.group_id)
        async with health_server(
            "ingest",
            fleet.liveness(opts.liveness_timeout_s),
            fleet.readiness,
            opts.metrics_host,
            opts.metrics_port,
            settings.http_server,
        ):
            await fleet.run()
    return 0
