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

from emostream.bench.pipeline_http import http_ingests
from emostream.config import IngestOptions, WorkerOptions, WorkerSettings
from emostream.ingest.runner import Ingest
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import TansuBroker
from emostream.settings import KafkaSettings
from emostream.worker.main import build_processor
from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker


def register(subparsers) -> None:
    """Add `bench pipeline`."""
    b = subparsers.add_parser("pipeline", help="sustained frames/s and latency vs a naive worker")
    b.add_argument("--streams", type=int, default=4)
    b.add_argument("--fps", type=float, default=15.0, help="per stream")
    b.add_argument("--duration", type=float, default=20.0)
    b.add_argument("--max-batch", type=int, default=16)
    b.add_argument("--max-frame-age-ms", type=int, default=1000)
    b.add_argument(
        "--mode",
        choices=["both", "all", "naive", "fullscan", "batched"],
        default="both",
        help="both: naive + batched; all: also batched with a full-frame scan every frame",
    )
    b.add_argument(
        "--ingest",
        choices=["kafka", "http", "both"],
        default="kafka",
        help="how frames arrive: the Kafka-producer ingest, POSTs to ingest's HTTP server, or "
        "each mode with both (same run)",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_bench_pipeline)


class RecordingProcessor:
    """Wraps the worker's processor; records each event's end-to-end latency and the frames."""

    def __init__(self, inner: FrameProcessor) -> None:
        self.inner = inner
        self.latencies_ms: list[int] = []
        self.frames_done = 0
        self.recording = True

    @property
    def model_info(self):
        return self.inner.model_info

    def process(self, frames):
        result = self.inner.process(frames)
        if self.recording:
            self.latencies_ms += [e.latency_ms for e in result.events if e.latency_ms is not None]
            self.frames_done += result.frames_ok
        return result

    def close(self) -> None:
        self.inner.close()


def _kafka(broker: TansuBroker, tag: str, streams: int) -> KafkaSettings:
    """Topics of this run's own."""
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap,
        frames_topic=f"bench-frames-{tag}",
        events_topic=f"bench-events-{tag}",
        dlq_topic=f"bench-dlq-{tag}",
        topic_partitions=max(streams, 1),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def _processor(settings: WorkerSettings, mode: str, max_age_ms: int) -> FrameProcessor:
    """The worker's processor as ``mode`` configures it (see the module docstring)."""
    naive = mode == "naive"
    if naive:
        settings.model.dtype = "fp32"
        settings.detector.threads = 1
    if mode in ("naive", "fullscan"):
        settings.detector.full_scan_interval_s = 0.0
    inner = build_processor(settings)
    inner.max_frame_age_ms = None if naive else max_age_ms
    return inner


def _ingests(kafka: KafkaSettings, streams: int, fps: float, kind: str = "kafka") -> list[Ingest]:
    if kind == "http":
        return http_ingests(kafka, streams, fps)  # POSTs to ingest's HTTP server
    ingests = [
        Ingest(kafka, IngestOptions(source="sample", stream_id=f"cam-{i}", fps=fps, loop=True))
        for i in range(streams)
    ]
    for ing in ingests:
        ing.live = True  # behave as live cameras: stale frames may be dropped (batched mode)
    return ingests


async def _shutdown(worker: Worker, ingests: list[Ingest], tasks: list[asyncio.Task]) -> None:
    """Stop fetching and reading, let the tasks end (30 s at most), close everything."""
    for ing in ingests:
        ing.request_stop()
    worker.request_stop()
    await asyncio.wait(tasks, timeout=30)
    for ing in ingests:
        await ing.stop()
    await worker.stop()  # closes the processor too


async def _run_mode(
    broker: TansuBroker,
    mode: str,
    streams: int,
    fps: float,
    duration_s: float,
    max_batch: int,
    max_age_ms: int,
    ingest: str = "kafka",
) -> dict:
    tag = uuid.uuid4().hex[:6]
    kafka = _kafka(broker, tag, streams)
    await ensure_topics(kafka)
    naive = mode == "naive"
    inner = _processor(WorkerSettings(kafka=kafka), mode, max_age_ms)
    processor = RecordingProcessor(inner)
    opts = WorkerOptions(
        group_id=f"bench-{tag}", max_batch_frames=1 if naive else max_batch, max_wait_ms=50
    )
    ingests = _ingests(kafka, streams, fps, ingest)
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
    await _shutdown(worker, ingests, [wtask, *itasks])
    return {
        "mode": mode,
        "max_batch_frames": opts.max_batch_frames,
        "dtype": str(inner.engine.dtype).removeprefix("torch."),
        "full_scan_interval_s": inner.full_scan_interval_s,
        "offered_fps": round(sent / elapsed, 2),
        "processed_fps": round(done / elapsed, 2),
        "faces_per_s": round(len(processor.latencies_ms) / elapsed, 2),
        "stale_dropped": stale,
        "ingest_dropped_behind": behind,
        "latency_ms": {f"p{q}": int(np.percentile(lat, q)) for q in (50, 95, 99)},
    }


async def bench_pipeline(
    streams: int,
    fps: float,
    duration_s: float,
    max_batch: int,
    max_age_ms: int,
    modes: list[str],
    ingests: tuple[str, ...] = ("kafka",),
) -> dict:
    with TansuBroker() as broker:
        results = [
            {
                **await _run_mode(broker, m, streams, fps, duration_s, max_batch, max_age_ms, kind),
                "ingest": kind,
            }
            for m in modes
            for kind in ingests
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
    by = {r["mode"]: r for r in results if r["ingest"] == ingests[0]}
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
            args.streams,
            args.fps,
            args.duration,
            args.max_batch,
            args.max_frame_age_ms,
            modes,
            ("kafka", "http") if args.ingest == "both" else (args.ingest,),
        )
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
