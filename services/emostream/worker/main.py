"""`emostream worker`."""

from __future__ import annotations

import structlog

from emostream.config import WorkerSettings, masked_dump
from emostream.inference import engine_from_settings
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers
from emostream.settings import DetectorSettings
from emostream.vision import FaceDetector, build_detector
from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker

log = structlog.get_logger(__name__)


def detector_from_settings(det: DetectorSettings) -> FaceDetector:
    return build_detector(
        det.kind,
        det.yunet_model,
        max_width_px=det.max_width_px,
        min_face_px=det.min_face_px,
        max_faces=det.max_faces,
        score_threshold=det.score_threshold,
    )


def build_processor(settings: WorkerSettings) -> FrameProcessor:
    detector = detector_from_settings(settings.detector)
    engine = engine_from_settings(settings.model)
    return FrameProcessor(
        detector,
        engine,
        smoothing=settings.smoothing,
        max_frame_age_ms=settings.worker.max_frame_age_ms,
        full_scan_interval_s=settings.detector.full_scan_interval_s,
        detect_threads=settings.detector.threads,
        track_min_hits=settings.worker.track_min_hits,
        detector_factory=lambda: detector_from_settings(settings.detector),
    )


async def run_worker(settings: WorkerSettings) -> int:
    log.info("config", **masked_dump(settings))
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
        ):
            await worker.run_with_grace(opts.shutdown_grace_s)
    return 0
