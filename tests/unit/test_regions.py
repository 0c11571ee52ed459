"""Track-guided detection: regions around known faces find them; the processor uses it between
scans."""

import numpy as np

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.vision.detection import Detection
from emostream.vision.detector import HaarDetector, build_detector
from emostream.vision.regions import RegionDetector, suppress_duplicates
from emostream.worker.processing import FrameProcessor, RawFrame


def _canvas(astronaut_bgr, dx: int) -> np.ndarray:
    """The astronaut photo at half size on a 640x360 canvas, shifted right by ``dx``."""
    small = astronaut_bgr[::2, ::2]
    canvas = np.full((360, 640, 3), 40, np.uint8)
    canvas[50 : 50 + small.shape[0], dx : dx + small.shape[1]] = small
    return canvas


def test_region_search_finds_the_face_near_its_box_and_nothing_elsewhere(astronaut_bgr):
    detector = build_detector("haar", max_width_px=480)
    frame = _canvas(astronaut_bgr, 100)
    full = detector.detect(frame)
    assert len(full) == 1
    f = full[0]
    regions = RegionDetector(detector)
    near = regions.detect(frame, [(f.x + 6, f.y - 4, f.w, f.h)])  # a slightly stale prediction
    assert len(near) == 1
    n = near[0]
    assert abs(n.x - f.x) < 0.2 * f.w and abs(n.y - f.y) < 0.2 * f.h and abs(n.w - f.w) < 0.3 * f.w
    assert regions.detect(frame, [(500, 250, 60, 60)]) == []  # empty corner
    assert regions.detect(frame, []) == []


def test_duplicates_from_overlapping_regions_are_suppressed():
    a, b, c = (
        Detection(10, 10, 50, 50, 0.9),
        Detection(12, 11, 50, 50, 0.8),
        Detection(200, 10, 40, 40, 0.7),
    )
    assert suppress_duplicates([b, a, c]) == [a, c]


class CountingHaar(HaarDetector):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def detect(self, image_bgr):
        self.shapes.append(image_bgr.shape[:2])
        return super().detect(image_bgr)


def _frames(astronaut_bgr, n, fps=10.0):
    out = []
    for i in range(n):
        meta = FrameMeta("cam-r", i, 1_700_000_000_000 + int(i * 1000 / fps))
        out.append(
            RawFrame(
                "frames",
                0,
                i,
                encode_frame(_canvas(astronaut_bgr, 60 + 8 * i)),
                frame_headers(meta),
            )
        )
    return out


def test_processor_scans_in_full_only_at_the_interval_and_keeps_the_track(astronaut_bgr):
    detector = CountingHaar()
    proc = FrameProcessor(
        detector, EmotionEngine(untrained_model(), device="cpu"), full_scan_interval_s=0.5
    )
    result = proc.process(_frames(astronaut_bgr, 10))  # 1 s of a face moving right at 80 px/s
    full = [s for s in detector.shapes if s == (360, 640)]
    assert len(full) == 2  # t=0 and t=0.5 s; the 8 other frames searched small regions
    assert all(s[0] < 200 and s[1] < 200 for s in detector.shapes if s != (360, 640))
    assert result.frames_ok == 10 and len(result.events) == 10
    assert len({e.face.track_id for e in result.events}) == 1
    xs = [e.face.box.x for e in result.events]
    assert xs[-1] - xs[0] > 50  # the boxes followed the face


def test_a_capture_clock_going_backwards_gets_a_full_scan(astronaut_bgr):
    detector = CountingHaar()
    proc = FrameProcessor(
        detector, EmotionEngine(untrained_model(), device="cpu"), full_scan_interval_s=0.5
    )
    frames = _frames(astronaut_bgr, 3)
    late = RawFrame(
        "frames", 0, 3, frames[0].value, frame_headers(FrameMeta("cam-r", 3, 1_600_000_000_000))
    )  # clock reset
    proc.process(frames + [late])
    assert [s == (360, 640) for s in detector.shapes] == [True, False, False, True]


def test_interval_zero_scans_every_frame(astronaut_bgr):
    detector = CountingHaar()
    proc = FrameProcessor(
        detector, EmotionEngine(untrained_model(), device="cpu"), full_scan_interval_s=0.0
    )
    proc.process(_frames(astronaut_bgr, 4))
    assert detector.shapes == [(360, 640)] * 4


def test_parallel_detection_gives_each_thread_its_own_detector(astronaut_bgr):
    """OpenCV cascades are not thread-safe: shared across threads they silently miss faces."""
    made = []

    def factory():
        made.append(HaarDetector())
        return made[-1]

    proc = FrameProcessor(
        HaarDetector(),
        EmotionEngine(untrained_model(), device="cpu"),
        detect_threads=2,
        detector_factory=factory,
    )
    frames = []
    for i in range(6):
        for s in range(4):
            meta = FrameMeta(f"cam-{s}", i, 1_700_000_000_000 + i * 100)
            frames.append(
                RawFrame(
                    "frames",
                    s,
                    i,
                    encode_frame(_canvas(astronaut_bgr, 40 + 30 * s)),
                    frame_headers(meta),
                )
            )
    result = proc.process(frames)
    assert result.frames_ok == 24
    assert sorted((e.stream_id, e.frame_seq) for e in result.events) == sorted(
        (f"cam-{s}", i) for s in range(4) for i in range(6)
    )
    assert 1 <= len(made) <= 2
    proc.close()
