"""CPU-side work for one micro-batch: decode, detect, crop (official geometry), classify, build events."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta, decode_frame, parse_headers
from emostream.inference import EmotionEngine
from emostream.models.registry import EMOTIONS
from emostream.schemas import (
    EmotionChangeV1,
    EmotionEventV1,
    EmotionResult,
    Face,
    FaceBox,
    ModelInfo,
    SmoothedEmotion,
)
from emostream.tracking import EmotionSmoother, IoUTracker
from emostream.vision import Detection, FaceDetector, crop, official_crop_box
from emostream.vision.regions import RegionDetector


@dataclass
class RawFrame:
    """A frame record as consumed: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class Rejected:
    frame: RawFrame
    reason: str
    detail: str
    stream_id: str | None = None


@dataclass
class BatchResult:
    events: list[EmotionEventV1] = field(default_factory=list)
    changes: list[EmotionChangeV1] = field(default_factory=list)  # stable-emotion changes
    rejected: list[Rejected] = field(default_factory=list)
    frames_ok: int = 0
    faces: int = 0
    stale_dropped: dict[str, int] = field(default_factory=dict)  # per stream

    def count_stale(self, stream_id: str) -> None:
        self.stale_dropped[stream_id] = self.stale_dropped.get(stream_id, 0) + 1


@dataclass
class StreamTracking:
    tracker: IoUTracker
    smoother: EmotionSmoother
    last_full_scan_s: float = float("-inf")  # capture time of the last full-frame detection


@dataclass
class _Detected:
    """One frame after detection and tracking, before classification."""

    meta: FrameMeta
    raw: RawFrame
    crops: list[np.ndarray] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)
    rejected: Rejected | None = None
    stale: bool = False  # aged past the limit while earlier frames were detected


def _probs_dict(p: np.ndarray) -> dict[str, float]:
    rounded = np.round(np.asarray(p, dtype=np.float64), 6)
    rounded[int(np.argmax(rounded))] += 1.0 - rounded.sum()  # exact sum after rounding
    return {name: float(v) for name, v in zip(EMOTIONS, rounded)}


class FrameProcessor:
    """Turns raw frame records into emotion events; never raises for a bad frame.

    Tracking state lives per stream in this worker (streams are keyed to partitions, so one
    worker sees a stream's frames in order); at most ``max_streams`` streams, least recent
    evicted. After a rebalance a stream's tracks restart with new ids.

    Detection runs per stream in a thread pool of ``detect_threads`` (streams in parallel, each
    stream's frames in order). OpenCV detectors are not thread-safe: each pool thread builds its
    own with ``detector_factory``; without a factory detection uses one thread. With
    ``full_scan_interval_s`` > 0, a stream with live tracks gets a full-frame scan at most that
    often (capture time) and, in between, detection only around its tracks (``RegionDetector``);
    0 scans every frame in full. A face yields events once its track is confirmed
    (``track_min_hits`` consecutive frames with a detection).
    """

    def __init__(
        self,
        detector: FaceDetector,
        engine: EmotionEngine,
        max_streams: int = 1000,
        smoothing_half_life_s: float = 0.25,
        smoothing_hold_s: float = 0.3,
        min_confidence: float = 0.35,
        max_frame_age_ms: int | None = None,
        full_scan_interval_s: float = 0.0,
        detect_threads: int | None = None,
        detector_factory: Callable[[], FaceDetector] | None = None,
        track_min_hits: int = 1,
    ) -> None:
        self.detector = detector
        self.track_min_hits = track_min_hits
        self.full_scan_interval_s = full_scan_interval_s
        self._detector_factory = detector_factory
        self._local = threading.local()
        threads = (detect_threads or os.cpu_count() or 1) if detector_factory else 1
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="detect")
        self.engine = engine
        self.max_streams = max_streams
        self.max_frame_age_ms = max_frame_age_ms
        self._smoothing = (smoothing_half_life_s, smoothing_hold_s, min_confidence)
        self._streams: OrderedDict[str, StreamTracking] = OrderedDict()
        self.model_info = ModelInfo(
            name=engine.model_name if engine.trained else f"{engine.model_name} (UNTRAINED)",
            version=engine.model_version,
            trained=engine.trained,
        )

    def _tracking(self, stream_id: str) -> StreamTracking:
        st = self._streams.get(stream_id)
        if st is None:
            half_life, hold, min_conf = self._smoothing
            st = StreamTracking(
                IoUTracker(prefix=stream_id, min_hits=self.track_min_hits),
                EmotionSmoother(EMOTIONS, half_life, hold, min_conf),
            )
            self._streams[stream_id] = st
            if len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        self._streams.move_to_end(stream_id)
        return st

    def _stale(self, meta: FrameMeta) -> bool:
        """Freshness over completeness for live cameras: frames past the age limit are skipped."""
        if self.max_frame_age_ms is None or not meta.live:
            return False
        return datetime.now(UTC).timestamp() * 1000 - meta.captured_ms > self.max_frame_age_ms

    def process(self, frames: list[RawFrame]) -> BatchResult:
        result = BatchResult()
        crops: list[np.ndarray] = []
        faces: list[tuple[_Detected, Face]] = []
        decoded = []
        for raw in frames:
            try:
                meta = parse_headers(raw.headers)
                if self._stale(meta):
                    result.count_stale(meta.stream_id)
                    continue
            except InvalidFrame as exc:
                result.rejected.append(Rejected(raw, exc.reason, str(exc), None))
                continue
            decoded.append((meta, raw))  # decoded in the detection pool, per stream
        # Tracking needs each stream's frames in capture order; streams run in parallel.
        decoded.sort(key=lambda item: (item[0].stream_id, item[0].seq))
        by_stream: dict[str, list] = {}
        for item in decoded:
            by_stream.setdefault(item[0].stream_id, []).append(item)
        jobs = [(self._tracking(sid), items) for sid, items in by_stream.items()]
        for detected in self._pool.map(lambda job: self._detect_stream(*job), jobs):
            for d in detected:
                if d.rejected is not None:
                    result.rejected.append(d.rejected)
                    continue
                if d.stale:
                    result.count_stale(d.meta.stream_id)
                    continue
                result.frames_ok += 1
                crops.extend(d.crops)
                faces.extend((d, f) for f in d.faces)
        result.rejected.sort(key=lambda r: (r.frame.topic, r.frame.partition, r.frame.offset))
        if not crops:
            return result
        probs = self.engine.classify(crops)
        self._build_events(result, faces, probs)
        result.faces = len(faces)
        return result

    def _build_events(self, result: BatchResult, faces: list, probs: np.ndarray) -> None:
        """Events (and change events) for classified faces; a frame whose event cannot be built
        is rejected whole, and events already built for its other faces are dropped."""
        now = datetime.now(UTC)
        failed: set[int] = set()  # frames whose events could not be built (by id of _Detected)
        for (frame, face), p in zip(faces, probs):
            if id(frame) in failed:
                continue
            try:
                event, change = self._outputs(frame.meta, face, p, now)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the partition
                failed.add(id(frame))
                result.rejected.append(
                    Rejected(
                        frame.raw,
                        "processing_error",
                        f"event not built: {exc}",
                        frame.meta.stream_id,
                    )
                )
                result.frames_ok -= 1
                continue
            result.events.append(event)
            if change is not None:
                result.changes.append(change)
        if failed:  # a frame is all or nothing: drop events of its faces built before the failure
            bad = {(f.meta.stream_id, f.meta.seq) for f, _ in faces if id(f) in failed}
            result.events = [e for e in result.events if (e.stream_id, e.frame_seq) not in bad]
            result.changes = [c for c in result.changes if (c.stream_id, c.frame_seq) not in bad]

    def _outputs(
        self, meta: FrameMeta, face: Face, p: np.ndarray, now: datetime
    ) -> tuple[EmotionEventV1, EmotionChangeV1 | None]:
        """The face's event and, when its stable emotion changed, the change event."""
        sm = self._tracking(meta.stream_id).smoother.update(
            face.track_id, p, meta.captured_ms / 1000
        )
        smoothed = SmoothedEmotion(
            label=sm.label,
            confidence=round(min(sm.confidence, 1.0), 6),
            probabilities=_probs_dict(sm.probabilities),
            stable_for_s=round(sm.stable_for_s, 3),
            changed=sm.changed,
        )
        event = self._event(meta, face, p, now, smoothed)
        if not sm.changed:
            return event, None
        return event, EmotionChangeV1(
            event_id=event.event_id,
            stream_id=event.stream_id,
            track_id=face.track_id,
            frame_seq=event.frame_seq,
            captured_at=event.captured_at,
            from_label=sm.previous,
            to_label=sm.label,
            confidence=smoothed.confidence,
            previous_held_s=(
                round(sm.previous_held_s, 3) if sm.previous_held_s is not None else None
            ),
            model=self.model_info,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _thread_detectors(self) -> tuple[FaceDetector, RegionDetector]:
        pair = getattr(self._local, "detectors", None)
        if pair is None:
            detector = self._detector_factory() if self._detector_factory else self.detector
            pair = self._local.detectors = (detector, RegionDetector(detector))
        return pair

    def _detect(self, st: StreamTracking, image: np.ndarray, t_s: float) -> list[Detection]:
        """Full-frame scan, or only around the stream's tracks when a scan is recent enough."""
        detector, regions = self._thread_detectors()
        # A capture clock that went backwards (camera reset) gets a full scan, not a long wait.
        if (
            self.full_scan_interval_s > 0
            and st.tracker.tracks
            and 0 <= t_s - st.last_full_scan_s < self.full_scan_interval_s
        ):
            return regions.detect(image, [t.predicted(t_s) for t in st.tracker.tracks.values()])
        st.last_full_scan_s = t_s
        return detector.detect(image)

    def _detect_stream(self, st: StreamTracking, items: list) -> list[_Detected]:
        """Decode, detect, track and crop one stream's frames in order (in the detection pool)."""
        out = []
        for meta, raw in items:
            if self._stale(meta):
                out.append(_Detected(meta, raw, stale=True))
                continue
            try:
                image = decode_frame(raw.value)
            except InvalidFrame as exc:
                out.append(
                    _Detected(
                        meta, raw, rejected=Rejected(raw, exc.reason, str(exc), meta.stream_id)
                    )
                )
                continue
            t_s = meta.captured_ms / 1000
            try:
                detections = self._detect(st, image, t_s)
            except Exception as exc:  # noqa: BLE001 - a poison frame must not crash-loop the worker
                out.append(
                    _Detected(
                        meta,
                        raw,
                        rejected=Rejected(
                            raw, "processing_error", f"detection failed: {exc}", meta.stream_id
                        ),
                    )
                )
                continue
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
            h, w = gray.shape
            kept = []
            for det in detections:
                box = official_crop_box(det.x, det.y, det.w, det.h, w, h)
                if box is not None:
                    kept.append((det, box))
            track_ids, ended = st.tracker.update([(d.x, d.y, d.w, d.h) for d, _ in kept], t_s)
            for t in ended:
                st.smoother.forget(t.track_id)
            frame = _Detected(meta, raw)
            # Only confirmed tracks become events: one-frame false detections never leave here.
            confirmed = [
                (k, tid) for k, tid in zip(kept, track_ids) if st.tracker.is_confirmed(tid)
            ]
            for index, ((det, box), tid) in enumerate(confirmed):
                frame.crops.append(crop(gray, box))
                frame.faces.append(
                    Face(
                        index=index,
                        box=FaceBox(x=det.x, y=det.y, w=det.w, h=det.h),
                        detector_score=round(min(max(det.score, 0.0), 1.0), 4),
                        track_id=tid,
                    )
                )
            out.append(frame)
        return out

    def _event(
        self,
        meta: FrameMeta,
        face: Face,
        p: np.ndarray,
        now: datetime,
        smoothed: SmoothedEmotion | None = None,
    ) -> EmotionEventV1:
        probabilities = _probs_dict(p)
        label = max(probabilities, key=probabilities.__getitem__)
        return EmotionEventV1(
            # The producer's run (else the capture time) keeps a restarted ingest's seq 0, 1, ...
            # from colliding with the last run's ids, which the aggregator would drop as replays.
            event_id=EmotionEventV1.make_id(
                meta.stream_id, meta.seq, face.index, meta.run_id or f"t{meta.captured_ms}"
            ),
            stream_id=meta.stream_id,
            frame_seq=meta.seq,
            captured_at=datetime.fromtimestamp(meta.captured_ms / 1000, UTC),
            processed_at=now,
            latency_ms=int(now.timestamp() * 1000) - meta.captured_ms,
            face=face,
            emotion=EmotionResult(
                label=label, confidence=probabilities[label], probabilities=probabilities
            ),
            smoothed=smoothed,
            model=self.model_info,
        )
