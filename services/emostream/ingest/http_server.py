"""Run the ingest HTTP server (frames over HTTP, ``/capture``) next to, or instead of, a source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from emostream import metrics
from emostream.config import IngestOptions
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_frames import frame_limit
from emostream.ingest.http_publish import FramePublisher
from emostream.runtime.api_keys import check_bind
from emostream.runtime.lifecycle import ApiServer
from emostream.settings import HttpServerOptions, KafkaOptions

log = structlog.get_logger(__name__)
PORT_FIX = "set EMOSTREAM_INGEST__HTTP__PORT (0 disables)"


def check_http_bind(options: IngestOptions) -> None:
    """One ConfigError, before anything starts, for a keyless server beyond loopback."""
    if options.http.port:
        check_bind(options.http.host, options.api_keys, "ingest HTTP", "EMOSTREAM_INGEST__API_KEYS")


def server_url(options: IngestOptions) -> str:
    host = options.http.host
    return (
        f"http://[{host}]:{options.http.port}"
        if ":" in host
        else f"http://{host}:{options.http.port}"
    )


@asynccontextmanager
async def ingest_http_server(
    kafka: KafkaOptions,
    options: IngestOptions,
    what: str = "ingest HTTP",
    limits: HttpServerOptions | None = None,
) -> AsyncIterator[FramePublisher | None]:
    """Serve frames over HTTP for the block (yields the publisher); port 0: yields None."""
    labels = options.stream_metrics  # per-stream metric labels: off unless enabled
    metrics.STREAM_LABELS.configure(labels.max_streams, labels.idle_s)
    http = options.http
    if not http.port:
        yield None
        return
    check_http_bind(options)
    publisher = FramePublisher(
        kafka,
        http.max_in_flight_frames,
        http.retry_after_s,
        max_capture_ahead_s=http.max_capture_ahead_s,
    )
    async with publisher:
        app = create_ingest_app(publisher, options)
        ws_max_size = frame_limit(http, publisher.max_message_bytes)  # larger: close 1009
        server = ApiServer(app, http.host, http.port, what, PORT_FIX, ws_max_size, limits)
        async with server:
            url = server_url(options)
            log.info("ingest http listening", url=url, capture=f"{url}/capture")
            yield publisher
