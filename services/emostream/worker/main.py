"""`emostream worker`."""

from __future__ import annotations

import structlog

from emostream import tracing
from emostream.config import WorkerSettings, masked_dump
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets
from emostream.worker.factory import build_processor, detector_from_settings, split_cpu_threads
from emostream.worker.runner import Worker

__all__ = ["build_processor", "detector_from_settings", "run_worker", "split_cpu_threads"]

log = structlog.get_logger(__name__)


async def run_worker(settings: WorkerSettings) -> int:
    log.info("config", **masked_dump(settings))
    refuse_placeholder_secrets(settings, settings.reached_hosts())
    tracing.configure_tracing("worker")  # OTEL_TRACES_EXPORTER; none by default
    # Before the model loads: a refused TLS handshake or login is one error within seconds.
    await check_connection(settings.kafka)
    processor = build_processor(settings)
    opts = settings.worker
    await ensure_topics(settings.kafka)
    async with Worker(settings.kafka, opts, processor) as worker:
        install_stop_handlers(worker.request_stop)
        async with health_server(
            "worker",
            worker.liveness(opts.liveness_timeout_s),
            worker.readiness,
            opts.metrics_host,
            opts.metrics_port,
            settings.http_server,
        ):
            await worker.run_with_grace(opts.shutdown_grace_s)
    return 0
