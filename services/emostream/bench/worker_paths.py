"""Timing the worker's processors over recorded frames (`emostream bench worker`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from emostream.schemas import EmotionEventV1
from emostream.worker.batch import RawFrame
from emostream.worker.protocol import AnyProcessor


def _batches(records: list[RawFrame], size: int) -> Iterator[list[RawFrame]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _results(
    processor, batches: list[list[RawFrame]], device: torch.device, overlap: bool
) -> Iterator[tuple[object, float]]:
    """(result, latency ms) per batch. With ``overlap``, batch k+1 is decoded and detected in a
    second thread (on its own CUDA stream) while batch k is tracked, classified and built;
    latency then runs from its preparation's start (as the worker overlaps them)."""
    if not overlap:
        for batch in batches:
            t = time.perf_counter()
            result = processor.process(batch)
            _sync(device)
            yield result, (time.perf_counter() - t) * 1000
        return

    def prepare(batch):
        return time.perf_counter(), processor.prepare(batch)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as ahead:
        pending = ahead.submit(prepare, batches[0]) if batches else None
        for k in range(len(batches)):
            started, prepared = pending.result()
            if k + 1 < len(batches):
                pending = ahead.submit(prepare, batches[k + 1])
            result = processor.finish(prepared)
            _sync(device)
            yield result, (time.perf_counter() - started) * 1000


def run_path(
    processor: AnyProcessor,
    records: list[RawFrame],
    batch_frames: int,
    device: torch.device,
    warmup: list[RawFrame],
    overlap: bool = False,
) -> tuple[dict, list[EmotionEventV1]]:
    """Process ``records`` in batches; figures and every event. Warm-up streams are separate."""
    for batch in _batches(warmup, batch_frames):
        processor.process(batch)
    _sync(device)
    getattr(processor, "stage_s", {}).clear()
    latencies_ms, events, frames_ok, rejected = [], [], 0, 0
    t0 = time.perf_counter()
    for result, ms in _results(processor, list(_batches(records, batch_frames)), device, overlap):
        latencies_ms.append(ms)
        events.extend(result.events)
        frames_ok += result.frames_ok
        rejected += len(result.rejected)
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies_ms or [0.0])
    return {
        "frames": len(records),
        "frames_ok": frames_ok,
        "rejected": rejected,
        "faces": len(events),
        "batch_frames": batch_frames,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(frames_ok / elapsed, 2) if elapsed else None,
        "faces_per_s": round(len(events) / elapsed, 2) if elapsed else None,
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p99": round(float(np.percentile(lat, 99)), 2),
        },
    }, events


def reference_events(settings, records: list[RawFrame], batch_frames: int) -> list[EmotionEventV1]:
    """Untimed: the CPU path with YuNet scanning every frame in full, one detection thread."""
    from emostream.worker.main import build_processor

    ref = settings.model_copy(deep=True)
    ref.detector = ref.detector.model_copy(
        update={"kind": "yunet_torch", "full_scan_interval_s": 0.0, "threads": 1}
    )
    ref.worker = ref.worker.model_copy(update={"path": "cpu"})
    processor = build_processor(ref, split_threads=False)
    try:
        return run_path(processor, records, batch_frames, torch.device("cpu"), [])[1]
    finally:
        processor.close()
