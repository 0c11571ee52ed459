"""The worker's processor, built from its settings: the one factory `emostream worker`, the demo
and the benchmarks use (``EMOSTREAM_WORKER__PATH`` picks the processing path)."""

from __future__ import annotations

import os
from typing import Literal

import cv2
import structlog
import torch

from emostream.config import WorkerSettings
from emostream.inference import EmotionEngine, engine_from_settings
from emostream.vision import FaceDetector, build_detector
from emostream.vision.window_search import WindowSearch
from emostream.vision.yunet_torch import TorchYuNetDetector
from emostream.vision_options import DetectorOptions
from emostream.worker.device_processing import DeviceFrameProcessor
from emostream.worker.processing import FrameProcessor
from emostream.worker.protocol import ProcessorBase

log = structlog.get_logger(__name__)


def detector_from_settings(det: DetectorOptions) -> FaceDetector:
    return build_detector(
        det.kind,
        det.yunet_model,
        max_width_px=det.max_width_px,
        min_face_px=det.min_face_px,
        max_faces=det.max_faces,
        score_threshold=det.score_threshold,
        runtime=det.runtime,
    )


def window_search_for(detector: FaceDetector, det: DetectorOptions) -> WindowSearch | None:
    """The batched track-window search for the PyTorch YuNet (None for the other detectors,
    which search windows one by one, per stream in threads)."""
    yunet = getattr(detector, "inner", detector)
    if not isinstance(yunet, TorchYuNetDetector):
        return None
    return WindowSearch(yunet, min_face_px=det.min_face_px, max_faces=det.max_faces)


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


def resolve_path(path: str) -> Literal["cpu", "device"]:
    """``auto``: the device path where CUDA is available, else the CPU path."""
    if path == "auto":
        return "device" if torch.cuda.is_available() else "cpu"
    return "device" if path == "device" else "cpu"


def build_processor(
    settings: WorkerSettings,
    split_threads: bool = True,
    engine: EmotionEngine | None = None,
    host_decode: bool = False,
    timing: bool = False,
) -> ProcessorBase:
    """The worker's processor on ``settings.worker.path``; ``split_threads``: see
    ``split_cpu_threads``; ``engine``: an already loaded classifier to share; ``host_decode``
    and ``timing``: the device path's (see ``DeviceFrameProcessor``)."""
    if split_threads:
        split_cpu_threads(settings)
    engine = engine or engine_from_settings(settings.model)
    det, opts = settings.detector, settings.worker
    path = resolve_path(opts.path)
    log.info("processing path", path=path, configured=opts.path, device=str(engine.device))
    if path == "device":
        return DeviceFrameProcessor(
            engine,
            device=str(engine.device),
            max_width_px=det.max_width_px,
            min_face_px=det.min_face_px,
            max_faces=det.max_faces,
            score_threshold=det.score_threshold,
            host_decode=host_decode,
            timing=timing,
            smoothing=settings.smoothing,
            max_frame_age_ms=opts.max_frame_age_ms,
            track_min_hits=opts.track_min_hits,
        )
    detector = detector_from_settings(det)
    return FrameProcessor(
        detector,
        engine,
        smoothing=settings.smoothing,
        max_frame_age_ms=opts.max_frame_age_ms,
        full_scan_interval_s=det.full_scan_interval_s,
        detect_threads=det.threads,
        track_min_hits=opts.track_min_hits,
        detector_factory=lambda: detector_from_settings(det),
        window_search=window_search_for(detector, det),
    )
