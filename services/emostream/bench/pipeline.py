"""`emostream bench pipeline`: sustained throughput and end-to-end latency on the embedded stack,
against a naive baseline in the same run.

Modes: ``naive`` (one frame at a time, fp32 on eager torch, a full-frame scan on every frame, one
detection thread, no freshness policy); ``batched`` (the worker's defaults: micro-batches, track-
guided detection between full scans, the best dtype and runtime, stale live frames dropped;
``EMOSTREAM_{MODEL,DETECTOR}__RUNTIME=torch`` measures it before ONNX Runtime); ``fullscan``
(``batched`` with a full-frame scan on every frame: what tracking-guided detection contributes).

The cameras run in a process of their own (``pipeline_ingest``; ``--ingest-in-process`` for the
old setup) so their rendering and encoding do not share the worker's GIL; each result says how
many cores the worker, the ingest process, the broker and the machine used (``cpu_cores``) and
where a frame's time went in the worker (``stage_ms_per_frame``: work per stage, and a frame's
latency split into its waits and its batch's stages).

With several modes, each runs in a fresh process with its own broker: a batched run measured
right after a naive one in the same process was slower in every stage (2-vCPU AMD EPYC,
2026-12-06, 4 x 15 fps: detect 11.1 against 6.1 ms a frame, classify 11.7 against 9.0, p99 391
against 122-181 ms), the naive run's thread pools and backlog still weighing on the process."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import time
import uuid
from dataclasses import dataclass

import numpy as np
import torch

from emostream.bench.pipeline_apart import results_apart
from emostream.bench.pipeline_ingest import (
    CpuMeter,
    IngestProcess,
    InProcessIngests,
    cpu_model,
    make_ingests,
)
from emostream.bench.pipeline_worker import (
    RecordingProcessor,
    kafka_options,
    mode_processor,
    runtimes,
)
from emostream.config import WorkerOptions, WorkerSettings
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import TansuBroker
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
    b.add_argument(
        "--target-latency-ms",
        type=int,
        default=WorkerOptions().target_latency_ms,
        help="the worker's latency target (EMOSTREAM_WORKER__TARGET_LATENCY_MS)",
    )
    b.add_argument(
        "--ingest-in-process",
        action="store_true",
        help="run the cameras in the benchmark's (the worker's) process, sharing its GIL",
    )
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=run_bench_pipeline)


@dataclass
class RunOptions:
    """One configuration's run (the command line's arguments)."""

    streams: int = 4
    fps: float = 15.0
    duration_s: float = 20.0
    max_batch: int = 16
    max_age_ms: int = 1000
    target_latency_ms: int = 200
    ingest_in_process: bool = False


async def _run_mode(broker: TansuBroker, mode: str, o: RunOptions, ingest: str = "kafka") -> dict:
    tag = uuid.uuid4().hex[:6]
    kafka = kafka_options(broker, tag, o.streams)
    await ensure_topics(kafka)
    naive = mode == "naive"
    settings = WorkerSettings(kafka=kafka)
    inner = mode_processor(settings, mode, o.max_age_ms)
    processor = RecordingProcessor(inner)
    opts = WorkerOptions(
        group_id=f"bench-{tag}",
        max_batch_frames=1 if naive else o.max_batch,
        max_wait_ms=50,
        target_latency_ms=o.target_latency_ms,
    )
    worker = Worker(kafka, opts, processor)
    worker.overlap = not naive  # naive: each frame's stages one after another, as before
    await worker.start()
    cams: IngestProcess | InProcessIngests
    if o.ingest_in_process:
        cams = InProcessIngests(make_ingests(kafka, o.streams, o.fps, ingest))
    else:
        cams = IngestProcess(kafka, o.streams, o.fps, ingest)
    await cams.start()
    wtask = asyncio.create_task(worker.run())
    try:
        measured = await _measure(broker, worker, processor, cams, o.duration_s)
    finally:
        await cams.stop()
        worker.request_stop()
        await asyncio.wait([wtask], timeout=30)
        await worker.stop()  # closes the processor too
    return {
        "mode": mode,
        "max_batch_frames": opts.max_batch_frames,
        "target_latency_ms": opts.target_latency_ms,
        "dtype": str(inner.engine.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "detector": settings.detector.kind,
        "runtime": runtimes(inner),
        "full_scan_interval_s": settings.detector.full_scan_interval_s,
        **measured,
        "ingest_process": not o.ingest_in_process,
    }


async def _measure(broker, worker: Worker, processor: RecordingProcessor, cams, duration_s) -> dict:
    """Warm up (the group joins and the model runs once), then measure ``duration_s``."""
    while worker.frames == 0:
        await asyncio.sleep(0.1)
    processor.latencies_ms.clear()
    processor.frames_done = 0
    worker.stage_totals.reset()
    sent0, stale0, behind0 = cams.sent, worker.stale_dropped, cams.dropped
    meter = CpuMeter(
        {
            "worker_process": os.getpid(),
            "ingest_process": cams.proc.pid if cams.proc is not None else None,
            "broker": broker._proc.pid if broker._proc is not None else None,
        }
    )
    t0 = time.monotonic()
    await asyncio.sleep(duration_s)
    elapsed = time.monotonic() - t0
    processor.recording = False
    cores = meter.cores()
    sent, stale = cams.sent - sent0, worker.stale_dropped - stale0
    lat = np.array(processor.latencies_ms or [0])
    return {
        "offered_fps": round(sent / elapsed, 2),
        "processed_fps": round(processor.frames_done / elapsed, 2),
        "faces_per_s": round(len(processor.latencies_ms) / elapsed, 2),
        "stale_dropped": stale,
        "stale_dropped_pct": round(100 * stale / max(sent, 1), 2),
        "ingest_dropped_behind": cams.dropped - behind0,
        "latency_ms": {f"p{q}": int(np.percentile(lat, q)) for q in (50, 95, 99)},
        "mean_batch_frames": worker.stage_totals.mean_batch_frames(),
        "cpu_cores": cores,
        "stage_ms_per_frame": worker.stage_totals.per_frame_ms(),
    }


async def bench_pipeline(
    options: RunOptions, modes: list[str], ingests: tuple[str, ...] = ("kafka",)
) -> dict:
    """Every mode and ingest in this process, on one embedded broker."""
    with TansuBroker() as broker:
        results = [
            {**await _run_mode(broker, m, options, kind), "ingest": kind}
            for m in modes
            for kind in ingests
        ]
    return _summary(options, results, ingests)


def mode_results(options: RunOptions, ingests: tuple[str, ...], mode: str) -> list[dict]:
    """One mode's results on a broker of its own (what each fresh process runs)."""
    return asyncio.run(bench_pipeline(options, [mode], ingests))["results"]


def _summary(options: RunOptions, results: list[dict], ingests: tuple[str, ...]) -> dict:
    out = {
        "benchmark": "pipeline",
        "streams": options.streams,
        "fps_per_stream": options.fps,
        "duration_s": options.duration_s,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
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
    options = RunOptions(
        args.streams,
        args.fps,
        args.duration,
        args.max_batch,
        args.max_frame_age_ms,
        args.target_latency_ms,
        args.ingest_in_process,
    )
    ingests = ("kafka", "http") if args.ingest == "both" else (args.ingest,)
    if len(modes) > 1:
        run_one = functools.partial(mode_results, options, ingests)
        results = results_apart(run_one, modes, getattr(args, "log_level", "INFO"))
        result = _summary(options, results, ingests)
    else:
        result = asyncio.run(bench_pipeline(options, modes, ingests))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
