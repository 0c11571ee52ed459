"""`emostream worker`."""

from __future__ import annotations

import os

import cv2
import structlog
import torch

from emostream.config import WorkerSettings, masked_dump
from emostream.inference import engine_from_settings
from emostream.kafka.clients import ensure_topics
from emostream.kafka.security import check_connection
from emostream.runtime.health import health_server
from emostream.runtime.lifecycle import install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets
from emostream.settings import DetectorOptions
from emostream.vision import FaceDetector, build_detector
from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker

log = structlog.get_logger(__name__)


def detector_from_settings(det: DetectorOptions) -> FaceDetector:
    return build_detector(
        det.kind,
        det.yunet_model,
        max_width_px=det.max_width_px,
        min_face_px=det.min_face_px,
        max_faces=det.max_faces,
        score_threshold=det.score_threshold,
    )


def split_cpu_threads(settings: WorkerSettings) -> None:
    """Share the CPU between the worker's overlapping stages instead of oversubscribing it.

    Detection already runs one stream per pool thread (``detector.threads``, default: the CPU
    count), so OpenCV's own parallel loops inside a detection only add threads that wait for
    each other; classification overlaps detection (the next batch's), so torch's default of one
    thread per core would make its synchronising threads compete with the detection threads (on
    2 cores a small batch took 10x longer that way). Unless ``model.threads`` says otherwise,
    torch gets a quarter of the cores (at least one). The settings are process-wide.
    """
    cv2.setNumThreads(1)
    if settings.model.threads is None:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // 4))


def build_processor(settings: WorkerSettings, split_threads: bool = True) -> FrameProcessor:
    """The worker's processor; ``split_threads``: see ``split_cpu_threads``."""
    if split_threads:
        split_cpu_threads(settings)
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
    refuse_placeholder_secrets(settings, settings.reached_hosts())
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
