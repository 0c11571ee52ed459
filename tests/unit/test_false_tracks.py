"""The demo's sample clip: Haar finds face-like background patches in single frames (a phantom
second face). With confirmed tracks (the worker's default min_hits) none becomes an event.
The packaged YuNet finds no phantom on the clip at all."""

from collections import Counter

import pytest

from emostream.config import WorkerSettings
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.ingest.sources import sample_frames
from emostream.worker.main import build_processor
from emostream.worker.processing import RawFrame

FRAMES = 120  # one pass of the clip, 12 s at the demo's 10 fps


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    return [encode_frame(f) for f in sample_frames(FRAMES)]


def tracks_with_events(clip: list[bytes], min_hits: int | None, detector: str = "haar") -> Counter:
    settings = WorkerSettings()
    settings.detector = settings.detector.model_copy(update={"kind": detector})
    if min_hits is not None:
        settings.worker = settings.worker.model_copy(update={"track_min_hits": min_hits})
    processor = build_processor(settings)
    tracks: Counter = Counter()
    t0 = 1_700_000_000_000
    for start in range(0, len(clip), 16):
        batch = [
            RawFrame("frames", 0, i, clip[i], frame_headers(FrameMeta("s", i, t0 + 100 * i)))
            for i in range(start, min(start + 16, len(clip)))
        ]
        for event in processor.process(batch).events:
            tracks[event.face.track_id] += 1
    processor.close()
    return tracks


def test_sample_clip_has_one_track_with_confirmation_and_phantoms_without(clip):
    unconfirmed = tracks_with_events(clip, min_hits=1)
    confirmed = tracks_with_events(clip, min_hits=None)  # the worker's default
    assert len(unconfirmed) > 1, "the clip's phantom detections (the reason for min_hits)"
    assert len(confirmed) == 1, f"false tracks reached the events: {confirmed}"
    ((track, events),) = confirmed.items()
    assert events >= FRAMES - 5, "the real face keeps its events (only its first frames wait)"


def test_packaged_yunet_has_one_track_even_without_confirmation(clip):
    tracks = tracks_with_events(clip, min_hits=1, detector="yunet_torch")
    assert len(tracks) == 1, f"phantom tracks with YuNet: {tracks}"
    assert sum(tracks.values()) >= FRAMES - 2
