"""`emostream aggregator`: the events consumer and the HTTP API in one process."""

from __future__ import annotations

import asyncio

import structlog

from emostream import tracing
from emostream.aggregator.api import service_app
from emostream.aggregator.api.auth import API_KEYS_SETTING
from emostream.aggregator.api.metrics_endpoint import metrics_server
from emostream.aggregator.consumer import EventConsumer
from emostream.aggregator.state.store import EventStore
from emostream.cameras.topic import CameraLog
from emostream.config import AggregatorSettings, masked_dump
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.api_keys import check_bind
from emostream.runtime.lifecycle import ApiServer, install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets

log = structlog.get_logger(__name__)


async def run_aggregator(settings: AggregatorSettings) -> int:
    log.info("config", **masked_dump(settings))
    refuse_placeholder_secrets(settings, settings.reached_hosts())
    tracing.configure_tracing("aggregator")  # OTEL_TRACES_EXPORTER; none by default
    api = settings.api
    check_bind(api.host, [*api.read_keys, *api.admin_keys], "the API", API_KEYS_SETTING)
    await check_connection(settings.kafka)  # a refused TLS handshake or login: one error
    await ensure_topics(settings.kafka)
    # The consumer writes through its own connection pool: API readers cannot starve it.
    retention = settings.aggregator
    async with (
        EventStore(settings.redis, retention) as store,
        EventStore(settings.redis, retention) as writer,
        CameraLog(settings.kafka, settings.fleet) as cameras,
    ):
        async with EventConsumer(
            settings.kafka, settings.aggregator, writer, settings.alerts
        ) as consumer:
            app = service_app(store, consumer, api, settings.alerts)
            app.state.cameras = cameras
            try:
                async with (
                    ApiServer(
                        app,
                        settings.api.host,
                        settings.api.port,
                        "API",
                        "set --api-port or EMOSTREAM_API__PORT",
                        limits=settings.http_server,
                    ),
                    metrics_server(api.metrics, consumer, limits=settings.http_server),
                ):
                    install_stop_handlers(consumer.request_stop)
                    log.info("api listening", host=settings.api.host, port=settings.api.port)
                    await consumer.run()
            finally:
                await app.state.live_hub.stop()
    await asyncio.sleep(0)
    return 0
