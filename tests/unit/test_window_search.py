"""YuNet over track windows: faces found again near their predicted boxes, every stream's windows
in one forward pass, the lockstep detect stage giving the full-scan path's events."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from emostream.config import WorkerSettings
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.vision.detector import build_detector
from emostream.vision.window_search import WindowSearch
from emostream.vision.yunet_torch import TorchYuNetDetector
from emostream.worker.detect_lockstep import LockstepDetectStage
from emostream.worker.detect_stage import DetectStage
from emostream.worker.factory import build_processor
from emostream.worker.processing import FrameProcessor, RawFrame


class CountingYuNet(TorchYuNetDetector):
    """Records the size of every batch the network is given."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.batches: list[tuple[int, ...]] = []

    def detect_tensor(self, batch_bgr):
        self.batches.append(tuple(batch_bgr.shape))
        return super().detect_tensor(batch_bgr)


def _canvas(astronaut_bgr, dx: int, size: float = 0.5) -> np.ndarray:
    """The astronaut photo scaled by ``size`` on a 640x360 canvas, shifted right by ``dx``."""
    small = cv2.resize(astronaut_bgr, None, fx=size, fy=size, interpolation=cv2.INTER_AREA)
    canvas = np.full((360, 640, 3), 40, np.uint8)
    h, w = min(small.shape[0], 310), min(small.shape[1], 640 - dx)
    canvas[50 : 50 + h, dx : dx + w] = small[:h, :w]
    return canvas


@pytest.fixture(scope="module")
def engine() -> EmotionEngine:
    torch.manual_seed(0)
    return EmotionEngine(untrained_model(), device="cpu", dtype="fp32")


def test_windows_find_the_face_near_its_box_in_frame_pixels(astronaut_bgr):
    yunet = TorchYuNetDetector(min_face_px=16)
    frame = _canvas(astronaut_bgr, 100)
    (full,) = yunet.detect(frame)
    search = WindowSearch(yunet, min_face_px=16)
    stale = (full.x + 8, full.y - 5, full.w, full.h)  # a prediction a few pixels off
    near, empty = search.detect_many([(frame, [stale]), (frame, [(520, 260, 60, 60)])])
    assert len(near) == 1 and empty == []
    n = near[0]
    assert abs(n.x - full.x) <= 0.1 * full.w and abs(n.y - full.y) <= 0.1 * full.h
    assert abs(n.w - full.w) <= 0.15 * full.w and n.score >= 0.7


def test_grey_frames_and_small_or_large_faces_are_found(astronaut_bgr):
    yunet = TorchYuNetDetector(min_face_px=10)
    search = WindowSearch(yunet, min_face_px=10)
    for size in (0.3, 1.0):  # the window is grown for a small face, shrunk for a large one
        frame = _canvas(astronaut_bgr, 60, size)
        (full,) = yunet.detect(frame)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        (found,) = search.detect_many([(grey, [(full.x, full.y, full.w, full.h)])])
        assert len(found) == 1 and abs(found[0].w - full.w) <= 0.15 * full.w, size


def test_every_frames_windows_go_through_the_network_in_one_pass(astronaut_bgr):
    yunet = CountingYuNet(min_face_px=16)
    search = WindowSearch(yunet, min_face_px=16)
    frames = [_canvas(astronaut_bgr, dx) for dx in (40, 120, 200)]
    boxes = []
    for frame in frames:
        (d,) = TorchYuNetDetector(min_face_px=16).detect(frame)
        boxes.append([(d.x, d.y, d.w, d.h), (d.x + 4, d.y + 2, d.w, d.h)])  # a duplicate too
    found = search.detect_many(list(zip(frames, boxes)))
    assert yunet.batches == [(6, 3, 64, 64)]
    assert [len(f) for f in found] == [1, 1, 1]  # the overlapping windows' duplicates suppressed


def test_window_size_must_suit_the_network():
    with pytest.raises(ValueError, match="multiple of 32"):
        WindowSearch(TorchYuNetDetector(), window_px=50)


def _streams(astronaut_bgr, streams: int, n: int, fps: float = 10.0) -> list[RawFrame]:
    """``streams`` cameras of the astronaut moving right, interleaved as a worker consumes them."""
    out = []
    for i in range(n):
        for s in range(streams):
            meta = FrameMeta(f"cam-{s}", i, 1_700_000_000_000 + int(i * 1000 / fps))
            image = _canvas(astronaut_bgr, 40 + 20 * s + 8 * i)
            out.append(RawFrame("frames", s, i, encode_frame(image), frame_headers(meta)))
    return out


def _lockstep(engine, yunet, interval_s: float = 0.5) -> FrameProcessor:
    full = build_detector("yunet_torch", max_width_px=480, min_face_px=32)
    full.inner = yunet  # type: ignore[attr-defined]  # count the full scans' batches too
    return FrameProcessor(
        full, engine, full_scan_interval_s=interval_s, window_search=WindowSearch(yunet)
    )


def test_lockstep_stage_batches_streams_windows_and_matches_full_scans(astronaut_bgr, engine):
    yunet = CountingYuNet(min_face_px=16)
    proc = _lockstep(engine, yunet)
    assert isinstance(proc.detect_stage, LockstepDetectStage)
    frames = _streams(astronaut_bgr, 3, 6)  # 0.6 s: two full scans per stream, then windows
    result = proc.finish(proc.prepare(frames))
    windows = [b[0] for b in yunet.batches if b[-2:] == (64, 64)]
    # Steps 2-6 each search every windowed stream's track in one pass; a stream's second scan
    # comes early by its phase (0, 0.62, 0.24 of the interval), so some steps hold two.
    assert len(windows) == 5 and sum(windows) == 12 and min(windows) >= 2
    assert len(yunet.batches) - len(windows) == 6  # full scans: one at 0 s, one by 0.5 s each
    every = FrameProcessor(build_detector("yunet_torch", max_width_px=480), engine)
    reference = every.finish(every.prepare(frames))
    assert result.frames_ok == 18 and len(result.events) == len(reference.events) == 18

    def boxes(events):
        return {(e.stream_id, e.frame_seq): (e.face.box.x, e.face.box.w) for e in events}

    for key, (x, w) in boxes(reference.events).items():
        got_x, got_w = boxes(result.events)[key]
        assert abs(got_x - x) <= 0.1 * w and abs(got_w - w) <= 0.15 * w, key
    assert len({e.face.track_id for e in result.events}) == 3
    # Everything ran on the calling thread: the lockstep stage never starts a detection pool.
    assert proc.detect_stage._pool is None
    assert every.detect_stage._pool is not None  # the per-stream stage does


def test_a_bad_frame_is_rejected_alone_and_the_streams_go_on(astronaut_bgr, engine):
    proc = _lockstep(engine, TorchYuNetDetector(min_face_px=16))
    frames = _streams(astronaut_bgr, 2, 4)
    broken = frames[3]  # cam-1's second frame
    frames[3] = RawFrame(
        broken.topic, broken.partition, broken.offset, b"not a jpeg", broken.headers
    )
    result = proc.finish(proc.prepare(frames))
    assert [r.frame.offset for r in result.rejected] == [1]
    assert result.rejected[0].stream_id == "cam-1"
    assert result.frames_ok == 7 and len(result.events) == 7


def test_a_detection_that_raises_rejects_only_its_frame(astronaut_bgr, engine):
    class Failing(TorchYuNetDetector):
        def detect_raw(self, images):
            if any(img.shape[0] == 64 and img[..., 2].mean() > 200 for img in images):
                raise RuntimeError("boom")
            return super().detect_raw(images)

    proc = _lockstep(engine, Failing(min_face_px=16))
    frames = _streams(astronaut_bgr, 2, 3)
    red = _canvas(astronaut_bgr, 60 + 8 * 2)
    red[..., 2] = 255  # cam-0's third frame: its window makes the network raise
    meta = FrameMeta("cam-0", 2, 1_700_000_000_200)
    frames[4] = RawFrame("frames", 0, 2, encode_frame(red), frame_headers(meta))
    result = proc.finish(proc.prepare(frames))
    assert [(r.stream_id, r.reason) for r in result.rejected] == [("cam-0", "processing_error")]
    assert "boom" in result.rejected[0].detail
    assert result.frames_ok == 5


def test_the_worker_searches_track_windows_in_batches_by_default(engine):
    default = build_processor(WorkerSettings(), split_threads=False, engine=engine)
    haar = WorkerSettings.model_validate({"detector": {"kind": "haar"}})
    threaded = build_processor(haar, split_threads=False, engine=engine)
    try:
        assert type(default.detect_stage) is LockstepDetectStage
        assert type(threaded.detect_stage) is DetectStage
    finally:
        default.close()
        threaded.close()
