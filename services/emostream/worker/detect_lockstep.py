"""The CPU worker's detect stage with YuNet: streams step through their frames together, so the
windows around every stream's tracks go through the network in one pass (``WindowSearch``).

Tracking needs a stream's frames one after another (frame k+1's windows come from frame k's
tracks), but different streams do not wait for each other: step k takes the k-th frame of every
stream in the batch. Full-frame scans (new faces) run one frame at a time, as often as
``full_scan_interval_s`` lets them; a lone 64 px window costs about as much as eight in a batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta, decode_frame
from emostream.vision import Detection, FaceDetector
from emostream.vision.window_search import WindowSearch
from emostream.worker.batch import Detected, RawFrame
from emostream.worker.detect_stage import (
    DetectStage,
    detection_failed,
    is_stale,
    predicted_boxes,
    tracked_frame,
    undecodable,
)
from emostream.worker.streams import StreamState


@dataclass
class _Step:
    """One stream's frame in the current step, decoded."""

    job: int
    st: StreamState
    meta: FrameMeta
    raw: RawFrame
    image: np.ndarray
    decode_s: float
    full_scan: bool = False


class LockstepDetectStage(DetectStage):
    """Decode, detect, track and crop: full scans with ``detector``, track windows with
    ``windows``, all on the calling thread (torch's own threads do the parallel work)."""

    def __init__(
        self,
        detector: FaceDetector,
        windows: WindowSearch,
        full_scan_interval_s: float,
        max_frame_age_ms: int | None = None,
    ) -> None:
        super().__init__(
            detector, full_scan_interval_s, threads=1, max_frame_age_ms=max_frame_age_ms
        )
        self.windows = windows

    def run(self, jobs: list[tuple[StreamState, list]]) -> list[Detected]:
        """Each job is one stream's state and its (meta, raw) frames in order."""
        out: list[list[Detected]] = [[] for _ in jobs]
        for k in range(max((len(items) for _, items in jobs), default=0)):
            steps = []
            for j, (st, items) in enumerate(jobs):
                if k < len(items):
                    step = self._decoded(j, st, *items[k], out[j])
                    if step is not None:
                        steps.append(step)
            for step, frame in zip(steps, self._detect_step(steps)):
                frame.decode_s = step.decode_s
                out[step.job].append(frame)
        return [frame for frames in out for frame in frames]

    def _decoded(
        self, job: int, st: StreamState, meta: FrameMeta, raw: RawFrame, done: list[Detected]
    ) -> _Step | None:
        """The frame decoded for this step, or None (stale or undecodable: added to ``done``)."""
        if is_stale(meta, self.max_frame_age_ms):  # aged while earlier steps were detected
            done.append(Detected(meta, raw, stale=True))
            return None
        t0 = time.perf_counter()
        try:
            image = decode_frame(raw.value)
        except InvalidFrame as exc:
            done.append(undecodable(meta, raw, exc))
            return None
        return _Step(job, st, meta, raw, image, time.perf_counter() - t0)

    def _detect_step(self, steps: list[_Step]) -> list[Detected]:
        """One step's frames detected and tracked, in order; a frame whose detection raises is
        rejected alone."""
        t0 = time.perf_counter()
        for step in steps:
            step.full_scan = self.scans_in_full(step.st, step.meta.captured_ms / 1000)
        windowed = [step for step in steps if not step.full_scan]
        found: dict[int, list[Detection] | Exception] = self._search_windows(windowed)
        shared_s = (time.perf_counter() - t0) / max(len(steps), 1)
        frames = []
        for step in steps:
            t1 = time.perf_counter()
            detections = found.get(id(step)) if not step.full_scan else self._full_scan(step)
            if isinstance(detections, Exception):
                frame = detection_failed(step.meta, step.raw, detections)
            else:
                frame = tracked_frame(step.st, step.meta, step.raw, step.image, detections or [])
            frame.detect_s = shared_s + time.perf_counter() - t1
            frames.append(frame)
        return frames

    def _full_scan(self, step: _Step) -> list[Detection] | Exception:
        try:
            return self.detector.detect(step.image)
        except Exception as exc:  # noqa: BLE001 - a poison frame must not crash-loop the worker
            return exc

    def _search_windows(self, steps: list[_Step]) -> dict[int, list[Detection] | Exception]:
        """Faces around each frame's predicted tracks, all frames in one pass; if the pass
        raises, frame by frame, so only the frame at fault fails."""
        requests = [(s.image, predicted_boxes(s.st, s.meta.captured_ms / 1000)) for s in steps]
        try:
            return {id(s): dets for s, dets in zip(steps, self.windows.detect_many(requests))}
        except Exception:  # noqa: BLE001 - find the frame at fault below
            pass
        found: dict[int, list[Detection] | Exception] = {}
        for step, request in zip(steps, requests):
            try:
                found[id(step)] = self.windows.detect_many([request])[0]
            except Exception as exc:  # noqa: BLE001 - this frame alone is rejected
                found[id(step)] = exc
        return found
