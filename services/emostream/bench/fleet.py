"""`emostream bench fleet`: one fleet ingest process running many cameras; frames/s vs offered.

An embedded Tansu broker and redis-server, an image folder of the built-in sample clip (640x360
JPEGs) under the fleet's source root, and one `emostream ingest` fleet member in a child
process. ``--cameras`` cameras at ``--fps`` each are written to the cameras topic; after a
warm-up, frames are counted off the frames topic by their capture time over ``--seconds``.
Reported: frames/s against the offered load, the ingest's CPU share, and its resident memory
before any camera and with all of them (the difference per camera).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import cv2
from aiokafka import AIOKafkaConsumer, TopicPartition

from emostream.bench import add_bench
from emostream.bench.aggregator_measure import code_commit, process_cpu_s
from emostream.bench.pipeline_ingest import cpu_model
from emostream.cameras.model import CameraSpec
from emostream.cameras.topic import CameraLog
from emostream.fleet_options import FleetOptions
from emostream.frames import parse_headers
from emostream.ingest.sources import sample_frames
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import (
    RedisServer,
    ServiceProcess,
    TansuBroker,
    free_port,
    settings_env,
)
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions


def register(subparsers) -> None:
    """Add `bench fleet`."""
    b = add_bench(subparsers, "fleet", run_bench_fleet, help=__doc__.splitlines()[0])
    b.add_argument("--cameras", type=int, default=24)
    b.add_argument("--fps", type=float, default=5.0, help="per camera")
    b.add_argument("--seconds", type=float, default=30.0, help="measured window")
    b.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")


def rss_kib(pid: int | None) -> int:
    """Resident memory of a live process (KiB; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration, TypeError):
        return 0


def _clip_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(sample_frames(60)):
        cv2.imwrite(str(path / f"{i:03d}.jpg"), frame)
    return path


async def _count_frames(kafka: KafkaOptions, t0: float, t1: float) -> dict[str, int]:
    """Frames per stream captured in [t0, t1), read until the topic has no more."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    counts: dict[str, int] = {}
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        parts = consumer.partitions_for_topic(kafka.frames_topic) or set()
        consumer.assign([TopicPartition(kafka.frames_topic, p) for p in parts])
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    meta = parse_headers(r.headers)
                    if t0 <= meta.captured_ms / 1000 < t1:
                        counts[meta.stream_id] = counts.get(meta.stream_id, 0) + 1
    finally:
        await consumer.stop()
    return counts


async def _measure(args, kafka: KafkaOptions, fleet: FleetOptions, ingest: ServiceProcess):
    await asyncio.sleep(3)  # joined its group, settled
    rss_idle = rss_kib(ingest.pid)
    async with CameraLog(kafka, fleet) as log:
        for i in range(args.cameras):
            await log.put(CameraSpec(stream_id=f"bench-cam-{i:03d}", source="clip", fps=args.fps))
    await asyncio.sleep(args.warmup)
    cpu0, t0 = process_cpu_s(ingest.pid), time.time()
    await asyncio.sleep(args.seconds)
    cpu1, t1 = process_cpu_s(ingest.pid), time.time()
    rss_busy = rss_kib(ingest.pid)
    ingest.stop()  # the topic stops growing: it can be read to its end
    counts = await _count_frames(kafka, t0, t1)
    offered = args.cameras * args.fps
    got = sum(counts.values()) / (t1 - t0)
    return {
        "cameras": args.cameras,
        "fps_per_camera": args.fps,
        "offered_fps": offered,
        "frames_per_s": round(got, 2),
        "ratio": round(got / offered, 4),
        "cameras_producing": len(counts),
        "slowest_camera_fps": round(min(counts.values(), default=0) / (t1 - t0), 2),
        "ingest_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 3),
        "rss_mib_no_cameras": round(rss_idle / 1024, 1),
        "rss_mib_all_cameras": round(rss_busy / 1024, 1),
        "rss_mib_per_camera": round((rss_busy - rss_idle) / 1024 / max(args.cameras, 1), 2),
        "frame": "640x360 JPEG (the sample clip), JPEG quality 85",
        "seconds": args.seconds,
    }


async def _bench(args) -> dict:
    tag = uuid.uuid4().hex[:8]
    with (
        TansuBroker() as broker,
        RedisServer() as redis,
        tempfile.TemporaryDirectory() as tmp,
    ):
        root = Path(tmp)
        _clip_folder(root / "clip")
        kafka = KafkaOptions(bootstrap_servers=broker.bootstrap, **run_topics(tag))
        await ensure_topics(kafka)
        fleet = FleetOptions(cameras_topic=f"cameras-{tag}", source_root=str(root))
        port = free_port()
        env = settings_env("kafka", kafka) | settings_env("fleet", fleet)
        env |= {
            "EMOSTREAM_REDIS__URL": redis.url,
            "EMOSTREAM_INGEST__SOURCE": "fleet",
            "EMOSTREAM_INGEST__METRICS_PORT": str(port),
            "EMOSTREAM_LOG__LEVEL": "WARNING",
        }
        ingest = ServiceProcess("ingest", env, root / "ingest.log").start(port)
        try:
            result = await _measure(args, kafka, fleet, ingest)
        finally:
            ingest.stop()
    return result | {"cpu": cpu_model(), "code": code_commit()}


def run_bench_fleet(args) -> int:
    result = asyncio.run(_bench(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
