import numpy as np
import pytest

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.models import EMOTIONS, untrained_model
from emostream.vision.detector import HaarDetector
from emostream.worker.processing import FrameProcessor, RawFrame


@pytest.fixture(scope="module")
def processor():
    return FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))


def raw(value, headers, offset=0):
    return RawFrame("frames", 0, offset, value, headers)


def test_face_frame_becomes_event(processor, astronaut_bgr):
    h, w = astronaut_bgr.shape[:2]
    frame = raw(
        encode_frame(astronaut_bgr), frame_headers(FrameMeta("cam-a", 3, 1_700_000_000_000))
    )
    result = processor.process([frame])
    assert result.rejected == [] and result.frames_ok == 1
    assert len(result.events) == 1
    ev = result.events[0]
    assert ev.stream_id == "cam-a" and ev.frame_seq == 3 and ev.face.index == 0
    box = ev.face.box
    # The astronaut's face is around x 180-270, y 60-170 in the 512x512 photo.
    assert 150 < box.x < 220 and 40 < box.y < 110 and 60 < box.w < 140
    assert box.x + box.w <= w and box.y + box.h <= h
    probs = ev.emotion.probabilities
    assert list(probs) == list(EMOTIONS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert ev.model.trained is False and "UNTRAINED" in ev.model.name


def test_no_face_no_event(processor):
    blank = np.full((240, 320, 3), 128, np.uint8)
    result = processor.process([raw(encode_frame(blank), frame_headers(FrameMeta("c", 0, 1)))])
    assert result.events == [] and result.rejected == [] and result.frames_ok == 1


def test_invalid_frames_rejected_with_reasons_and_others_survive(processor, astronaut_bgr):
    good_headers = frame_headers(FrameMeta("cam-b", 9, 1))
    frames = [
        raw(b"\xff\xd8\xff\xe0not a jpeg", frame_headers(FrameMeta("cam-b", 7, 1)), 0),
        raw(b"", frame_headers(FrameMeta("cam-b", 8, 1)), 1),
        raw(encode_frame(astronaut_bgr), [], 2),
        raw(encode_frame(astronaut_bgr), good_headers, 3),
    ]
    result = processor.process(frames)
    reasons = {r.frame.offset: r.reason for r in result.rejected}
    assert reasons == {0: "corrupt_image", 1: "empty_payload", 2: "missing_headers"}
    assert result.rejected[0].stream_id == "cam-b"
    assert [e.frame_seq for e in result.events] == [9]


def test_faces_keep_track_ids_and_get_smoothed(astronaut_bgr):
    proc = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    shifted = np.roll(astronaut_bgr, 6, axis=1)
    frames = [
        raw(encode_frame(img), frame_headers(FrameMeta("cam-t", seq, 1_000 + 100 * seq)), seq)
        for seq, img in enumerate([astronaut_bgr, shifted, astronaut_bgr])
    ]
    result = proc.process(list(reversed(frames)))  # out of order on purpose
    events = result.events
    assert [e.frame_seq for e in events] == [0, 1, 2]
    assert len({e.face.track_id for e in events}) == 1
    assert events[0].face.track_id.startswith("cam-t-")
    first, last = events[0].smoothed, events[-1].smoothed
    assert first.changed is True and last.stable_for_s == pytest.approx(0.2)
    # The new track's first stable label is a change event of its own kind; no flicker after.
    assert [(c.track_id, c.from_label, c.to_label, c.frame_seq) for c in result.changes] == [
        (events[0].face.track_id, None, first.label, 0)
    ]
    assert result.changes[0].event_id == events[0].event_id
    assert sum(last.probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_stale_live_frames_dropped_and_counted_files_kept(astronaut_bgr):
    import time as _time

    proc = FrameProcessor(
        HaarDetector(), EmotionEngine(untrained_model(), device="cpu"), max_frame_age_ms=5000
    )  # slack for a loaded CPU; the old frame is 60 s old
    old_ms = int(_time.time() * 1000) - 60000
    payload = encode_frame(astronaut_bgr)
    frames = [
        raw(payload, frame_headers(FrameMeta("live-cam", 0, old_ms, live=True)), 0),
        raw(payload, frame_headers(FrameMeta("file-cam", 0, old_ms, live=False)), 1),
        raw(
            payload, frame_headers(FrameMeta("live-cam", 1, int(_time.time() * 1000), live=True)), 2
        ),
    ]
    result = proc.process(frames)
    assert result.stale_dropped == {"live-cam": 1}
    assert sorted((e.stream_id, e.frame_seq) for e in result.events) == [
        ("file-cam", 0),
        ("live-cam", 1),
    ]
    file_event = next(e for e in result.events if e.stream_id == "file-cam")
    assert file_event.latency_ms >= 60000
    assert result.rejected == []


def test_downscaled_detection_maps_boxes_back(astronaut_bgr):
    import cv2

    from emostream.vision import build_detector

    big = cv2.resize(astronaut_bgr, (1024, 1024))
    full = HaarDetector().detect(big)
    small = build_detector("haar", max_width_px=480, min_face_px=32).detect(big)
    assert full and small  # detectors sort by area: [0] is the astronaut's face
    a, b = full[0], small[0]
    assert abs(a.x - b.x) < 25 and abs(a.y - b.y) < 25 and abs(a.w - b.w) < 40
    assert build_detector("haar", max_width_px=480, min_face_px=400).detect(big) == []


class ScriptedDetector:
    """A fake detector whose ``faces(image, call)`` sees which call (1, 2, ...) this is."""

    name = "scripted"

    def __init__(self, faces):
        self.faces, self.calls = faces, 0

    def detect(self, image):
        self.calls += 1
        return self.faces(image, self.calls)


def test_detector_failure_dead_letters_the_frame_only(astronaut_bgr):
    def flaky(image, call):
        if call == 1:
            raise RuntimeError("boom")
        return HaarDetector().detect(image)

    proc = FrameProcessor(ScriptedDetector(flaky), EmotionEngine(untrained_model(), device="cpu"))
    payload = encode_frame(astronaut_bgr)
    result = proc.process(
        [
            raw(payload, frame_headers(FrameMeta("c", 0, 1)), 0),
            raw(payload, frame_headers(FrameMeta("c", 1, 1)), 1),
        ]
    )
    assert [(r.reason, r.frame.offset) for r in result.rejected] == [("processing_error", 0)]
    assert [e.frame_seq for e in result.events] == [1]


def test_a_frame_whose_event_cannot_be_built_is_dead_lettered_alone(astronaut_bgr):
    proc = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    build = proc.classify_stage.event

    def failing(meta, *args, **kwargs):
        if meta.seq == 1:
            raise ValueError("unrepresentable")
        return build(meta, *args, **kwargs)

    proc.classify_stage.event = failing
    payload = encode_frame(astronaut_bgr)
    result = proc.process(
        [raw(payload, frame_headers(FrameMeta("c", s, 1_700_000_000_000 + s)), s) for s in range(3)]
    )
    assert [(r.reason, r.frame.offset) for r in result.rejected] == [("processing_error", 1)]
    assert "unrepresentable" in result.rejected[0].detail
    assert [e.frame_seq for e in result.events] == [0, 2] and result.frames_ok == 2


def test_one_frame_false_detection_never_becomes_an_event(astronaut_bgr):
    """A phantom face (background detected in one frame) yields no event; the real face does
    once its track is confirmed (min_hits consecutive frames)."""
    from emostream.vision.detection import Detection

    def phantom_once(image, call):
        faces = [Detection(180, 60, 100, 100, 0.99)]
        if call == 2:
            faces.append(Detection(380, 300, 80, 80, 0.82))
        return faces

    proc = FrameProcessor(
        ScriptedDetector(phantom_once),
        EmotionEngine(untrained_model(), device="cpu"),
        track_min_hits=3,
    )
    payload = encode_frame(astronaut_bgr)
    result = proc.process(
        [raw(payload, frame_headers(FrameMeta("c", i, 1000 + 100 * i)), i) for i in range(6)]
    )
    assert result.frames_ok == 6
    assert [e.frame_seq for e in result.events] == [2, 3, 4, 5]
    assert {e.face.track_id for e in result.events} == {"c-0"}
    assert all(e.face.index == 0 for e in result.events)


def test_worker_settings_confirm_tracks_by_default():
    from emostream.config import WorkerOptions

    assert WorkerOptions().track_min_hits >= 2
