"""`emostream bench pipeline`: sustained throughput and end-to-end latency on the embedded stack,
against a naive baseline in the same run.

Modes: ``naive`` (one frame at a time, fp32, a full-frame face scan on every frame, one detection
thread, no freshness policy); ``batched`` (the worker's defaults: micro-batches, detection threads,
track-guided detection between full scans, the machine's best dtype, stale live frames dropped);
``fullscan`` (``batched`` but a full-frame scan on every frame, to show what tracking-guided
detection contributes)."""

from __future__ import annotations

import asyncio
import json
import platform
import time
import uuid

import numpy as np
import torch

from emostream.config import IngestOptions, WorkerOptions, WorkerSettings
from emostream.ingest.runner import Ingest
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import TansuBroker
from emostream.settings import KafkaSettings
from emostream.worker.main import build_processor
from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker


class RecordingProcessor(FrameProcessor):
    """Records each event's end-to-end latency and the frames it handled."""

    def __init__(self, inner: FrameProcessor) -> None:
        self.__dict__.update(inner.__dict__)
        self.latencies_ms: list[int] = []
        self.frames_done = 0
        self.recording = True

    def process(self, frames):
        result = super().process(frames)
        if self.recording:
            self.latencies_ms += [e.latency_ms for e in result.events if e.latency_ms is not None]
            self.frames_done += result.frames_ok
        return result


async def _run_mode(
    broker: TansuBroker,
    mode: str,
    streams: int,
    fps: float,
    duration_s: float,
    max_batch: int,
    max_age_ms: int,
) -> dict:
    tag = uuid.uuid4().hex[:6]
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap,
        frames_topic=f"bench-frames-{tag}",
        events_topic=f"bench-events-{tag}",
        dlq_topic=f"bench-dlq-{tag}",
        topic_partitions=max(streams, 1),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await ensure_topics(kafka)
    naive = mode == "naive"
    settings = WorkerSettings(kafka=kafka)
    if naive:
        settings.model.dtype = "fp32"
        settings.detector.threads = 1
    if mode in ("naive", "fullscan"):
        settings.detector.full_scan_interval_s = 0.0
    processor = RecordingProcessor(build_processor(settings))
    processor.max_frame_age_ms = None if naive else max_age_ms
    opts = WorkerOptions(
        group_id=f"bench-{tag}", max_batch_frames=1 if naive else max_batch, max_wait_ms=50
    )
    ingests = [
        Ingest(kafka, IngestOptions(source="sample", stream_id=f"cam-{i}", fps=fps, loop=True))
        for i in range(streams)
    ]
    for ing in ingests:
        ing.live = True  # behave as live cameras: stale frames may be dropped (batched mode)
    worker = Worker(kafka, opts, processor)
    await worker.start()
    for ing in ingests:
        await ing.start()
    # Warm up: the group joins and the model runs once before the clock starts.
    wtask = asyncio.create_task(worker.run())
    itasks = [asyncio.create_task(ing.run()) for ing in ingests]
    while worker.frames == 0:
        await asyncio.sleep(0.1)
    processor.latencies_ms.clear()
    processor.frames_done = 0
    sent0, stale0 = sum(i.sent for i in ingests), worker.stale_dropped
    behind0 = sum(i.dropped for i in ingests)
    t0 = time.monotonic()
    await asyncio.sleep(duration_s)
    elapsed = time.monotonic() - t0
    processor.recording = False
    sent = sum(i.sent for i in ingests) - sent0
    stale = worker.stale_dropped - stale0
    behind = sum(i.dropped for i in ingests) - behind0
    done, lat = processor.frames_done, np.array(processor.latencies_ms or [0])
    for ing in ingests:
        ing.request_stop()
    worker.request_stop()
    await asyncio.wait([wtask, *itasks], timeout=30)
    for ing in ingests:
        await ing.stop()
    await worker.stop()
    processor.close()
    return {
        "mode": mode,
        "max_batch_frames": opts.max_batch_frames,
        "dtype": str(processor.engine.dtype).removeprefix("torch."),
        "full_scan_interval_s": processor.full_scan_interval_s,
        "offered_fps": round(sent / elapsed, 2),
        "processed_fps": round(done / elapsed, 2),
        "faces_per_s": round(len(processor.latencies_ms) / elapsed, 2),
        "stale_dropped": stale,
        "ingest_dropped_behind": behind,
        "latency_ms": {f"p{q}": int(np.percentile(lat, q)) for q in (50, 95, 99)},
    }


async def bench_pipeline(
    streams: int, fps: float, duration_s: float, max_batch: int, max_age_ms: int, modes: list[str]
) -> dict:
    with TansuBroker() as broker:
        results = [
            await _run_mode(broker, m, streams, fps, duration_s, max_batch, max_age_ms)
            for m in modes
        ]
    out = {
        "benchmark": "pipeline",
        "streams": streams,
        "fps_per_stream": fps,
        "duration_s": duration_s,
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "results": results,
    }
    by = {r["mode"]: r for r in results}
    if "naive" in by and "batched" in by and by["naive"]["processed_fps"]:
        out["speedup_processed_fps"] = round(
            by["batched"]["processed_fps"] / by["naive"]["processed_fps"], 2
        )
    return out


def run_bench_pipeline(args) -> int:
    modes = {"both": ["naive", "batched"], "all": ["naive", "fullscan", "batched"]}.get(
        args.mode, [args.mode]
    )
    result = asyncio.run(
        bench_pipeline(
            args.streams, args.fps, args.duration, args.max_batch, args.max_frame_age_ms, modes
        )
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
