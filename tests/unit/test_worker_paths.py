"""Both processing paths behind one protocol: the same stages, the same events on the same frames,
the path picked by EMOSTREAM_WORKER__PATH through the one factory."""

from __future__ import annotations

import time

import cv2
import pytest
import torch

from emostream.config import WorkerSettings
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import EmotionEngine
from emostream.models import untrained_model
from emostream.settings import KafkaOptions
from emostream.worker.batch import DetectedBatch, RawFrame
from emostream.worker.device_processing import DeviceBatch, DeviceFrameProcessor
from emostream.worker.factory import build_processor, resolve_path
from emostream.worker.processing import FrameProcessor
from emostream.worker.protocol import Processor, ProcessorBase
from emostream.worker.runner import Worker


def _settings(path: str, **worker) -> WorkerSettings:
    """CPU settings where both paths detect alike: PyTorch YuNet, a full scan every frame."""
    return WorkerSettings.model_validate(
        {
            "worker": {"path": path, "track_min_hits": 2, **worker},
            "model": {"device": "cpu", "dtype": "fp32", "allow_untrained": True},
            "detector": {"kind": "yunet_torch", "full_scan_interval_s": 0.0, "threads": 1},
        }
    )


@pytest.fixture(scope="module")
def engine() -> EmotionEngine:
    torch.manual_seed(0)
    return EmotionEngine(untrained_model(), device="cpu", dtype="fp32")


def _records(astronaut_bgr, n: int = 12) -> list[RawFrame]:
    """Two streams of the astronaut drifting right, interleaved as a worker consumes them."""
    base = cv2.resize(astronaut_bgr, (640, 480))
    out = []
    for seq in range(n):
        shifted = cv2.copyMakeBorder(base, 0, 0, 2 * seq, 0, cv2.BORDER_REPLICATE)[:, :640]
        for sid in ("cam-a", "cam-b"):
            meta = FrameMeta(sid, seq, 1_000 + seq * 66)
            out.append(RawFrame("frames", 0, len(out), encode_frame(shifted), frame_headers(meta)))
    return out


def _run_overlapped(processor, batches) -> list:
    """As the worker runs the stages: batch k+1 prepared before batch k is finished."""
    events, pending = [], processor.prepare(batches[0])
    for nxt in [*batches[1:], None]:
        ahead = processor.prepare(nxt) if nxt is not None else None
        events += processor.finish(pending).events
        pending = ahead
    return events


def test_both_paths_implement_the_protocol_without_function_attributes(engine):
    cpu = build_processor(_settings("cpu"), split_threads=False, engine=engine)
    dev = build_processor(_settings("device"), split_threads=False, engine=engine)
    try:
        assert type(cpu) is FrameProcessor and type(dev) is DeviceFrameProcessor
        for p in (cpu, dev):
            assert isinstance(p, Processor) and isinstance(p, ProcessorBase)
            assert not hasattr(type(p).process, "staged")
        assert isinstance(cpu.prepare([]), DetectedBatch)
        assert isinstance(dev.prepare([]), DeviceBatch)
        assert dev.device == torch.device("cpu")
        assert dev.max_frame_age_ms == cpu.max_frame_age_ms == 2000
    finally:
        cpu.close()
        dev.close()


def test_auto_picks_the_device_path_only_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_path("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_path("auto") == "device"
    assert resolve_path("cpu") == "cpu" and resolve_path("device") == "device"
    monkeypatch.setenv("EMOSTREAM_WORKER__PATH", "device")
    assert WorkerSettings().worker.path == "device"


def test_both_paths_give_the_same_events_on_the_same_frames(engine, astronaut_bgr):
    records = _records(astronaut_bgr)
    batches = [records[i : i + 6] for i in range(0, len(records), 6)]
    got = {}
    for path in ("cpu", "device"):
        p = build_processor(_settings(path), split_threads=False, engine=engine)
        try:
            got[path] = _run_overlapped(p, batches)
        finally:
            p.close()
    cpu, dev = got["cpu"], got["device"]
    assert len(cpu) >= 16  # track_min_hits=2: from each stream's second frame on
    assert [(e.stream_id, e.frame_seq, e.face.track_id) for e in dev] == [
        (e.stream_id, e.frame_seq, e.face.track_id) for e in cpu
    ]
    for a, b in zip(cpu, dev):
        assert a.event_id == b.event_id
        assert abs(a.face.box.x - b.face.box.x) <= 2 and abs(a.face.box.w - b.face.box.w) <= 2
        assert a.emotion.label == b.emotion.label
        assert a.smoothed is not None and b.smoothed is not None
        assert a.smoothed.label == b.smoothed.label


def test_the_device_path_drops_stale_live_frames_and_rejects_bad_ones(engine, astronaut_bgr):
    dev = build_processor(_settings("device", max_frame_age_ms=30_000), False, engine=engine)
    good = encode_frame(cv2.resize(astronaut_bgr, (640, 480)))
    now = int(time.time() * 1000)
    frames = [
        RawFrame("frames", 0, 0, good, frame_headers(FrameMeta("live", 0, now, live=True))),
        RawFrame(
            "frames", 0, 1, good, frame_headers(FrameMeta("live", 1, now - 120_000, live=True))
        ),
        RawFrame("frames", 0, 2, b"not a jpeg", frame_headers(FrameMeta("live", 2, now))),
    ]
    result = dev.process(frames)
    # aged past the limit between detection and tracking (a busy worker): dropped, counted
    prepared = dev.prepare(frames[:1])
    dev.max_frame_age_ms = 1
    time.sleep(0.01)
    late = dev.finish(prepared)
    dev.close()
    assert late.frames_ok == 0 and late.stale_dropped == {"live": 1} and not late.events
    assert result.frames_ok == 1 and result.stale_dropped == {"live": 1}
    assert [r.frame.offset for r in result.rejected] == [2]
    assert {"decode", "detect", "track"} <= result.stage_s.keys()  # the worker's stage totals


@pytest.mark.parametrize("path", ["cpu", "device"])
async def test_the_worker_runs_either_path_in_two_stages(path, engine, astronaut_bgr):
    """The worker prepares in ``prepare`` (so the next batch overlaps this one's ``finish``)."""
    processor = build_processor(_settings(path), split_threads=False, engine=engine)
    kafka = KafkaOptions(bootstrap_servers="127.0.0.1:9")
    worker = Worker(kafka, _settings(path).worker, processor)
    records = [
        type("R", (), {**vars(r), "timestamp": time.time() * 1000})()
        for r in _records(astronaut_bgr, 3)
    ]
    in_hand = await worker.prepare(records)
    want = DeviceBatch if path == "device" else DetectedBatch
    assert isinstance(in_hand.prepared, want)
    result = processor.finish(in_hand.prepared)
    processor.close()
    assert result.frames_ok == 6 and len(result.events) == 4
