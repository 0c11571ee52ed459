"""CPU-side work for one micro-batch, in visible stages: admit -> decode/detect/track/crop
(``detect_stage``) -> classify/smooth/emit (``classify_stage``), over per-stream state
(``streams``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from emostream.inference import EmotionEngine
from emostream.vision import FaceDetector
from emostream.vision.window_search import WindowSearch
from emostream.vision_options import SmoothingOptions
from emostream.worker.batch import BatchResult, DetectedBatch, RawFrame, Rejected
from emostream.worker.detect_lockstep import LockstepDetectStage
from emostream.worker.detect_stage import DetectStage, admit
from emostream.worker.protocol import ProcessorBase

__all__ = ["BatchResult", "FrameProcessor", "RawFrame", "Rejected"]


class FrameProcessor(ProcessorBase[DetectedBatch]):
    """Turns raw frame records into emotion events; never raises for a bad frame.

    Tracking state lives per stream in this worker (``StreamStates``: at most ``max_streams``,
    least recent evicted). Detection runs per stream in a thread pool of ``detect_threads``
    (streams in parallel, each stream's frames in order). OpenCV detectors are not thread-safe:
    each pool thread builds its own with ``detector_factory``; without a factory detection uses
    one thread. With ``full_scan_interval_s`` > 0, a stream with live tracks gets a full-frame
    scan at most that often (capture time) and, in between, detection only around its tracks
    (``RegionDetector``); 0 scans every frame in full. A face yields events once its track is
    confirmed (``track_min_hits`` consecutive frames with a detection). With ``window_search``
    (YuNet) the streams step through their frames together instead, and the searches around
    every stream's tracks run as one batch (``LockstepDetectStage``).
    """

    def __init__(
        self,
        detector: FaceDetector,
        engine: EmotionEngine,
        max_streams: int = 1000,
        smoothing: SmoothingOptions | None = None,
        max_frame_age_ms: int | None = None,
        full_scan_interval_s: float = 0.0,
        detect_threads: int | None = None,
        detector_factory: Callable[[], FaceDetector] | None = None,
        track_min_hits: int = 1,
        window_search: WindowSearch | None = None,
    ) -> None:
        super().__init__(engine, smoothing, track_min_hits, max_streams)
        self.detect_stage: DetectStage
        if window_search is not None:
            self.detect_stage = LockstepDetectStage(
                detector, window_search, full_scan_interval_s, max_frame_age_ms
            )
        else:
            self.detect_stage = DetectStage(
                detector, full_scan_interval_s, detect_threads, detector_factory, max_frame_age_ms
            )

    @property
    def detector(self) -> FaceDetector:
        return self.detect_stage.detector

    @property
    def full_scan_interval_s(self) -> float:
        return self.detect_stage.full_scan_interval_s

    @property
    def max_frame_age_ms(self) -> int | None:
        """Live frames older than this are dropped (counted); None keeps every frame."""
        return self.detect_stage.max_frame_age_ms

    @max_frame_age_ms.setter
    def max_frame_age_ms(self, value: int | None) -> None:
        self.detect_stage.max_frame_age_ms = value

    def prepare(self, frames: list[RawFrame]) -> DetectedBatch:
        """Admit, decode, detect, track, crop. Batch k+1 may be prepared while batch k is in
        ``finish``: this stage owns the trackers, ``finish`` the smoothers."""
        batch = DetectedBatch(BatchResult())
        result = batch.result
        by_stream: dict[str, list] = {}
        for meta, raw in admit(frames, result, self.max_frame_age_ms):
            by_stream.setdefault(meta.stream_id, []).append((meta, raw))
        jobs = [(self.streams.get(sid), items) for sid, items in by_stream.items()]
        for d in self.detect_stage.run(jobs):
            result.add_time("decode", d.decode_s)
            result.add_time("detect", d.detect_s)
            if d.rejected is not None:
                result.rejected.append(d.rejected)
            elif d.stale:
                result.count_stale(d.meta.stream_id)
            else:
                result.frames_ok += 1
                batch.kept.append(d)
        return batch

    def finish(self, batch: DetectedBatch) -> BatchResult:
        """Classify, smooth, build the events (batches in the order they were prepared)."""
        result, kept = batch.result, batch.kept
        crops = [c for d in kept for c in d.crops]
        if crops:
            t0 = time.perf_counter()
            probs = self.classify_stage.classify(crops)
            t1 = time.perf_counter()
            self.emit(result, kept, probs)
            result.add_time("classify", t1 - t0)
            result.add_time("events", time.perf_counter() - t1)
        self.forget_ended(kept)
        result.sort_rejected()
        return result

    def close(self) -> None:
        self.detect_stage.close()
