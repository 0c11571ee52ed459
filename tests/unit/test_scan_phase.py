"""Streams that start together do not all get their full-frame scans in the same batch, and the
worker's two stages keep smoothing state consistent when run apart."""

from __future__ import annotations

import numpy as np

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.vision.detector import HaarDetector
from emostream.worker.batch import RawFrame
from emostream.worker.processing import FrameProcessor

FULL = (360, 640)


class CountingHaar(HaarDetector):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def detect(self, image_bgr):
        self.shapes.append(image_bgr.shape[:2])
        return super().detect(image_bgr)


def _canvas(astronaut_bgr: np.ndarray, dx: int) -> np.ndarray:
    small = astronaut_bgr[::2, ::2]
    canvas = np.full((360, 640, 3), 40, np.uint8)
    canvas[50 : 50 + small.shape[0], dx : dx + small.shape[1]] = small
    return canvas


def _step(astronaut_bgr, i: int, streams: int) -> list[RawFrame]:
    """Frame ``i`` (10 fps) of each stream, all captured at the same time."""
    jpeg = encode_frame(_canvas(astronaut_bgr, 60 + 4 * i))
    return [
        RawFrame(
            "f", s, i, jpeg, frame_headers(FrameMeta(f"cam-{s}", i, 1_700_000_000_000 + 100 * i))
        )
        for s in range(streams)
    ]


def test_streams_started_together_scan_in_different_batches(astronaut_bgr):
    detector = CountingHaar()
    proc = FrameProcessor(
        detector, EmotionEngine(untrained_model(), device="cpu"), full_scan_interval_s=0.5
    )
    full_per_batch = []
    for i in range(15):  # 1.5 s, one batch per capture time with both streams' frames
        before = len(detector.shapes)
        result = proc.process(_step(astronaut_bgr, i, 2))
        assert result.frames_ok == 2
        full_per_batch.append(sum(s == FULL for s in detector.shapes[before:]))
    assert full_per_batch[0] == 2  # a new stream is scanned in full at once
    assert max(full_per_batch[1:]) == 1  # afterwards never both in one batch
    assert sum(full_per_batch[1:]) >= 4  # and each is still scanned every 0.5 s at least


def test_prepared_batches_finish_in_order_with_the_same_events_as_process(astronaut_bgr):
    engine = EmotionEngine(untrained_model(), device="cpu")
    one = FrameProcessor(HaarDetector(), engine, full_scan_interval_s=0.5)
    two = FrameProcessor(HaarDetector(), engine, full_scan_interval_s=0.5)
    steps = [_step(astronaut_bgr, i, 2) for i in range(6)]
    expected = [one.process(b).events for b in steps]
    # the worker's overlap: batch k+1 prepared before batch k is finished
    got, pending = [], two.prepare(steps[0])
    for b in steps[1:]:
        nxt = two.prepare(b)
        got.append(two.finish(pending).events)
        pending = nxt
    got.append(two.finish(pending).events)
    strip = [[(e.event_id, e.face.track_id, e.emotion.label) for e in evs] for evs in expected]
    assert [[(e.event_id, e.face.track_id, e.emotion.label) for e in evs] for evs in got] == strip
    assert sum(map(len, got)) > 0
