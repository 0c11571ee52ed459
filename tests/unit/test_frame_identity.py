"""A frame's identity survives restarts of its producer: the run id enters the event id."""

import pytest

from emostream.errors import InvalidFrame
from emostream.frames import H_RUN, FrameMeta, encode_frame, frame_headers, parse_headers
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.schemas import EmotionEventV1
from emostream.vision.detector import HaarDetector
from emostream.worker.processing import FrameProcessor, RawFrame


def test_run_id_round_trips_through_the_headers():
    meta = FrameMeta("cam", 0, 1_700_000_000_000, False, "3f9c0a1b2c3d4e5f")
    assert (H_RUN, b"3f9c0a1b2c3d4e5f") in frame_headers(meta)
    assert parse_headers(frame_headers(meta)) == meta
    plain = FrameMeta("cam", 0, 1)
    assert all(name != H_RUN for name, _ in frame_headers(plain))
    assert parse_headers(frame_headers(plain)).run_id == ""


@pytest.mark.parametrize("bad", [b"has space", b"abc\n", b"x" * 65, b"\xff\xfe", None])
def test_malformed_run_header_is_a_bad_header(bad):
    headers = frame_headers(FrameMeta("cam", 0, 1)) + [(H_RUN, bad)]
    if bad is None:  # a null header value is malformed, not absent
        headers[-1] = (H_RUN, None)
    with pytest.raises(InvalidFrame) as info:
        parse_headers(headers)
    assert info.value.reason == "bad_headers"


def test_event_id_tells_runs_apart():
    a = EmotionEventV1.make_id("cam", 0, 0, "run-a")
    assert a == EmotionEventV1.make_id("cam", 0, 0, "run-a")
    assert a != EmotionEventV1.make_id("cam", 0, 0, "run-b")
    assert a != EmotionEventV1.make_id("cam", 0, 0)


def test_restarted_producer_gets_new_ids_and_replays_keep_theirs(astronaut_bgr):
    proc = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    payload = encode_frame(astronaut_bgr)

    def ids(meta: FrameMeta) -> list[str]:
        result = proc.process([RawFrame("frames", 0, 0, payload, frame_headers(meta))])
        assert result.events
        return [e.event_id for e in result.events]

    first = ids(FrameMeta("cam", 0, 1_700_000_000_000, False, "run-1"))
    assert ids(FrameMeta("cam", 0, 1_700_000_000_000, False, "run-1")) == first  # a replay
    assert set(ids(FrameMeta("cam", 0, 1_700_000_060_000, False, "run-2"))).isdisjoint(first)
    # Producers without a run header: the capture time tells their restarts apart.
    plain = ids(FrameMeta("cam", 0, 1_700_000_000_000))
    assert ids(FrameMeta("cam", 0, 1_700_000_000_000)) == plain
    assert set(ids(FrameMeta("cam", 0, 1_700_000_120_000))).isdisjoint(plain)
