"""The worker's first stage: admit frames, decode, detect, track, crop (official geometry).

``official_faces`` and ``crop_faces`` are the detect -> crop step shared with ``emostream
predict``, so a photo and a frame with the same pixels give the same crops.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import cv2
import numpy as np

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta, decode_frame, parse_headers
from emostream.schemas import Face, FaceBox
from emostream.vision import Detection, FaceDetector, crop, official_crop_box
from emostream.vision.regions import RegionDetector
from emostream.worker.batch import BatchResult, Detected, RawFrame, Rejected
from emostream.worker.streams import StreamState

Box = tuple[int, int, int, int]
# Between full scans, faces are searched scaled to this width: on the sample clip 48 px finds
# 119 of the 136 faces that 64 px (the RegionDetector default) finds 120 of, with the same box
# IoU, for two thirds of the CPU (Haar's cost grows with the pixels searched).
REGION_FACE_PX = 48


def official_faces(
    image: np.ndarray, detections: list[Detection]
) -> tuple[np.ndarray, list[tuple[Detection, Box]]]:
    """The grey image and each detection with its official crop box (faces without one dropped)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    h, w = gray.shape
    return gray, kept_boxes(detections, w, h)


def kept_boxes(detections: list[Detection], w: int, h: int) -> list[tuple[Detection, Box]]:
    """Detections whose official crop box fits a ``w`` x ``h`` frame, with that box."""
    return [
        (d, box)
        for d in detections
        if (box := official_crop_box(d.x, d.y, d.w, d.h, w, h)) is not None
    ]


def crop_faces(gray: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
    """The classifier's input crops, cut from the grey frame."""
    return [crop(gray, box) for box in boxes]


def detect_and_crop(
    detector: FaceDetector, image: np.ndarray
) -> tuple[list[tuple[Detection, Box]], list[np.ndarray]]:
    """Full-frame detection, official boxes and crops: the worker's step, for single images."""
    gray, kept = official_faces(image, detector.detect(image))
    return kept, crop_faces(gray, [box for _, box in kept])


def track_faces(
    st: StreamState,
    kept: list[tuple[Detection, Box]],
    t_s: float,
    forget: Callable[[str], None] | None = None,
) -> list[tuple[Box, Face]]:
    """Track one frame's faces; the crop box and ``Face`` of each confirmed track.

    Only confirmed tracks become events: one-frame false detections never leave here. Ended
    tracks go to ``forget`` (default: their smoother forgets them now).
    """
    track_ids, ended = st.tracker.update([(d.x, d.y, d.w, d.h) for d, _ in kept], t_s)
    for t in ended:
        (forget or st.smoother.forget)(t.track_id)
    confirmed = [(k, tid) for k, tid in zip(kept, track_ids) if st.tracker.is_confirmed(tid)]
    return [
        (
            box,
            Face(
                index=index,
                box=FaceBox(x=det.x, y=det.y, w=det.w, h=det.h),
                detector_score=round(min(max(det.score, 0.0), 1.0), 4),
                track_id=tid,
            ),
        )
        for index, ((det, box), tid) in enumerate(confirmed)
    ]


def is_stale(meta: FrameMeta, max_frame_age_ms: int | None) -> bool:
    """Freshness over completeness for live cameras: frames past the age limit are skipped."""
    if max_frame_age_ms is None or not meta.live:
        return False
    return datetime.now(UTC).timestamp() * 1000 - meta.captured_ms > max_frame_age_ms


def admit(
    frames: list[RawFrame], result: BatchResult, max_frame_age_ms: int | None
) -> list[tuple[FrameMeta, RawFrame]]:
    """Frames with valid headers that are fresh enough, in stream and capture order."""
    accepted = []
    for raw in frames:
        try:
            meta = parse_headers(raw.headers)
        except InvalidFrame as exc:
            result.reject(raw, exc.reason, str(exc), None)
            continue
        if is_stale(meta, max_frame_age_ms):
            result.count_stale(meta.stream_id)
            continue
        accepted.append((meta, raw))
    # Tracking needs each stream's frames in capture order; streams run in parallel.
    accepted.sort(key=lambda item: (item[0].stream_id, item[0].seq))
    return accepted


class DetectStage:
    """Decode, detect, track and crop, per stream in a pool of ``threads`` (see FrameProcessor)."""

    def __init__(
        self,
        detector: FaceDetector,
        full_scan_interval_s: float = 0.0,
        threads: int | None = None,
        detector_factory: Callable[[], FaceDetector] | None = None,
        max_frame_age_ms: int | None = None,
    ) -> None:
        self.detector = detector
        self.full_scan_interval_s = full_scan_interval_s
        self.max_frame_age_ms = max_frame_age_ms
        self._detector_factory = detector_factory
        self._local = threading.local()
        self._threads = (threads or os.cpu_count() or 1) if detector_factory else 1
        self._pool: ThreadPoolExecutor | None = None  # started by the first run that uses it

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, jobs: list[tuple[StreamState, list]]) -> list[Detected]:
        """Each job is one stream's state and its (meta, raw) frames in order."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="detect")
        return [d for out in self._pool.map(lambda job: self._stream(*job), jobs) for d in out]

    def _thread_detectors(self) -> tuple[FaceDetector, RegionDetector]:
        pair = getattr(self._local, "detectors", None)
        if pair is None:
            detector = self._detector_factory() if self._detector_factory else self.detector
            regions = RegionDetector(detector, face_px=REGION_FACE_PX)
            pair = self._local.detectors = (detector, regions)
        return pair

    def _detect(self, st: StreamState, image: np.ndarray, t_s: float) -> list[Detection]:
        """Full-frame scan, or only around the stream's tracks when a scan is recent enough."""
        detector, regions = self._thread_detectors()
        if self.scans_in_full(st, t_s):
            return detector.detect(image)
        return regions.detect(image, predicted_boxes(st, t_s))

    def scans_in_full(self, st: StreamState, t_s: float) -> bool:
        """Whether this frame gets a full-frame scan (noted as the stream's last), else a search
        around the stream's tracks only."""
        # A capture clock that went backwards (camera reset) gets a full scan, not a long wait.
        if (
            self.full_scan_interval_s > 0
            and st.tracker.tracks
            and 0 <= t_s - st.last_full_scan_s < self.full_scan_interval_s
        ):
            return False
        first = st.last_full_scan_s == float("-inf")
        # A new stream's second scan comes early by its phase: scans stay at most the interval
        # apart, and streams that started together stop scanning in the same batch.
        st.last_full_scan_s = t_s - (st.scan_phase * self.full_scan_interval_s if first else 0.0)
        return True

    def _stream(self, st: StreamState, items: list) -> list[Detected]:
        return [self._frame(st, meta, raw) for meta, raw in items]

    def _frame(self, st: StreamState, meta: FrameMeta, raw: RawFrame) -> Detected:
        if is_stale(meta, self.max_frame_age_ms):  # aged while earlier frames were detected
            return Detected(meta, raw, stale=True)
        t0 = time.perf_counter()
        try:
            image = decode_frame(raw.value)
        except InvalidFrame as exc:
            return undecodable(meta, raw, exc)
        t1 = time.perf_counter()
        frame = self._detect_frame(st, meta, raw, image)
        frame.decode_s, frame.detect_s = t1 - t0, time.perf_counter() - t1
        return frame

    def _detect_frame(
        self, st: StreamState, meta: FrameMeta, raw: RawFrame, image: np.ndarray
    ) -> Detected:
        t_s = meta.captured_ms / 1000
        try:
            detections = self._detect(st, image, t_s)
        except Exception as exc:  # noqa: BLE001 - a poison frame must not crash-loop the worker
            return detection_failed(meta, raw, exc)
        return tracked_frame(st, meta, raw, image, detections)


def predicted_boxes(st: StreamState, t_s: float) -> list[Box]:
    """Where the stream's tracks are expected at capture time ``t_s``."""
    return [t.predicted(t_s) for t in st.tracker.tracks.values()]


def undecodable(meta: FrameMeta, raw: RawFrame, exc: InvalidFrame) -> Detected:
    """A frame that does not decode: rejected alone, with the decoder's reason."""
    return Detected(meta, raw, rejected=Rejected(raw, exc.reason, str(exc), meta.stream_id))


def detection_failed(meta: FrameMeta, raw: RawFrame, exc: Exception) -> Detected:
    """A frame whose detection raised: rejected alone, to the dead-letter topic."""
    detail = f"detection failed: {exc}"
    return Detected(meta, raw, rejected=Rejected(raw, "processing_error", detail, meta.stream_id))


def tracked_frame(
    st: StreamState, meta: FrameMeta, raw: RawFrame, image: np.ndarray, detections: list[Detection]
) -> Detected:
    """A frame's detections tracked, with the confirmed faces' crops."""
    gray, kept = official_faces(image, detections)
    frame = Detected(meta, raw)
    tracked = track_faces(st, kept, meta.captured_ms / 1000, frame.ended_tracks.append)
    frame.crops = crop_faces(gray, [box for box, _ in tracked])
    frame.faces = [face for _, face in tracked]
    return frame
