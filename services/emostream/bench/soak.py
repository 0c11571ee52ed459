"""`emostream bench soak`: the stack at moderate load for minutes, each service in its own process,
to show memory stays flat. Not for CI: a meaningful run takes ten minutes on a quiet machine.

The broker and Redis are local child processes (``emostream.local.servers``); the worker and
the aggregator run as ``emostream worker`` / ``emostream aggregator`` child processes; ingest runs
in this process (it is the load generator). Every ``sample_s`` the resident set size of each
process is read from ``/proc/<pid>/status``. The verdict covers the services: the local broker
keeps every message in memory and Redis keeps deduplication keys for an hour, so those two grow
by design and are reported without being judged.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from emostream.aggregator.state.store import EventStore
from emostream.bench import add_bench
from emostream.bench.soak_measure import (
    JUDGED,
    MB,
    _metric,
    growth_mb_per_min,
    rss_bytes,
    scrape,
    steady,
)
from emostream.config import IngestOptions
from emostream.ingest.runner import Ingest
from emostream.kafka.clients import client_kwargs, ensure_topics
from emostream.local.servers import (
    RedisServer,
    TansuBroker,
)
from emostream.local.stack import services_env, worker_and_aggregator
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions, RedisOptions

HELP = (
    "the stack at moderate load for minutes: RSS growth per process, errors, a steady verdict "
    "(not for CI)"
)


def register(subparsers) -> None:
    """Add `bench soak`."""
    b = add_bench(subparsers, "soak", run_bench_soak, HELP)
    b.add_argument("--minutes", type=float, default=10.0)
    b.add_argument("--streams", type=int, default=2)
    b.add_argument("--fps", type=float, default=5.0, help="per stream")
    b.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    b.add_argument(
        "--max-growth-mb-per-min",
        type=float,
        default=1.0,
        help="steady when each service grows less than this over the second half",
    )


async def _count_topic(kafka: KafkaOptions, topic: str) -> int:
    """Messages in ``topic`` (from highwaters: Tansu's end offsets are not reliable)."""
    consumer = AIOKafkaConsumer(**client_kwargs(kafka, "soak-count"), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        await consumer.getmany(timeout_ms=1000)
        return sum(consumer.highwater(tp) or 0 for tp in tps)
    finally:
        await consumer.stop()


@dataclass
class _Stack:
    """The processes under test and how to reach them."""

    kafka: KafkaOptions
    redis: RedisOptions
    watched: dict  # name -> process (``pid``, ``returncode``)
    metrics_port: int
    api_port: int


async def _start_stack(procs: ExitStack, streams: int, log_dir: Path) -> _Stack:
    """Broker and Redis, then the worker and aggregator as child processes."""
    tag = uuid.uuid4().hex[:6]
    broker = procs.enter_context(TansuBroker())
    redis = procs.enter_context(RedisServer())
    kafka = KafkaOptions(
        bootstrap_servers=broker.bootstrap,
        **run_topics(tag, "soak-"),
        topic_partitions=max(streams, 2),
    )
    redis_settings = RedisOptions(url=SecretStr(redis.url), key_prefix=f"soak{tag}")
    await ensure_topics(kafka)
    env = services_env(kafka, redis_settings)
    worker, aggregator, metrics_port, api_port = worker_and_aggregator(env, log_dir)
    services = {"worker": worker, "aggregator": aggregator}
    for proc in services.values():
        procs.callback(proc.stop)
    services["worker"].start(metrics_port)
    services["aggregator"].start(api_port)
    watched = {**services, "broker": broker, "redis": redis}
    return _Stack(kafka, redis_settings, watched, metrics_port, api_port)


async def _sample(
    watched: dict, pids: dict, minutes: float, sample_s: float
) -> tuple[dict[str, list[tuple[float, int]]], list[dict], float]:
    """RSS of every process each ``sample_s`` until ``minutes`` pass or a process exits."""
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in watched}
    exits: list[dict] = []
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        for name, pid in pids.items():
            rss = rss_bytes(pid)
            if rss is not None:
                samples[name].append((elapsed, rss))
        for name, proc in watched.items():
            code = proc.returncode
            if code is not None and not any(e["process"] == name for e in exits):
                exits.append({"process": name, "exit_code": code, "at_s": round(elapsed, 1)})
        if elapsed >= minutes * 60 or exits:
            return samples, exits, t0
        await asyncio.sleep(min(sample_s, max(minutes * 60 - elapsed, 0.0)))


async def _drain(metrics_port: int, frames_in: int, exits: list) -> dict[str, float]:
    """Let the backlog drain (bounded) so stored events describe the whole run."""
    drain_deadline = time.monotonic() + 30
    worker_metrics: dict[str, float] = {}
    while time.monotonic() < drain_deadline and not exits:
        worker_metrics = await asyncio.to_thread(scrape, f"http://127.0.0.1:{metrics_port}/metrics")
        if _metric(worker_metrics, "emostream_frames_total") >= frames_in:
            break
        await asyncio.sleep(1)
    return worker_metrics


async def soak(
    minutes: float,
    streams: int,
    fps: float,
    sample_s: float = 10.0,
    max_growth_mb_per_min: float = 1.0,
) -> dict:
    log_dir = Path(tempfile.mkdtemp(prefix="emostream-soak-"))
    with ExitStack() as procs:
        stack = await _start_stack(procs, streams, log_dir)
        pids = {name: p.pid for name, p in stack.watched.items()}
        ingests = [
            Ingest(
                stack.kafka,
                IngestOptions(source="sample", stream_id=f"soak-{i}", fps=fps, loop=True),
            )
            for i in range(streams)
        ]
        for ing in ingests:
            await ing.start()
        tasks = [asyncio.create_task(ing.run()) for ing in ingests]
        try:
            samples, exits, t0 = await _sample(stack.watched, pids, minutes, sample_s)
        finally:
            for ing in ingests:
                ing.request_stop()
            await asyncio.wait(tasks, timeout=30)
            for ing in ingests:
                await ing.stop()
        run_s = time.monotonic() - t0
        frames_in = sum(i.sent for i in ingests)
        worker_metrics = await _drain(stack.metrics_port, frames_in, exits)
        await asyncio.sleep(2)  # the aggregator's last batch
        agg_metrics = await asyncio.to_thread(scrape, f"http://127.0.0.1:{stack.api_port}/metrics")
        async with EventStore(stack.redis) as store:
            events_stored = sum(s["events_total"] for s in await store.list_streams())
        dead_letters = await _count_topic(stack.kafka, stack.kafka.dlq_topic)
    growth = {name: growth_mb_per_min(s) for name, s in samples.items()}
    return {
        "benchmark": "soak",
        "minutes": round(run_s / 60, 2),
        "streams": streams,
        "fps_per_stream": fps,
        "sample_s": sample_s,
        "machine": platform.machine(),
        "processes": _processes(samples, pids, growth),
        "frames_in": frames_in,
        "frames_failed": sum(i.failed for i in ingests),
        **_counts(worker_metrics, agg_metrics),
        "events_stored": events_stored,
        "dead_letters": dead_letters,
        "broker_data_loss": _metric(agg_metrics, "emostream_broker_data_loss_total"),
        "process_exits": exits,
        "max_growth_mb_per_min": max_growth_mb_per_min,
        "steady": steady(growth, max_growth_mb_per_min, exits),
        "logs": str(log_dir),
    }


def _counts(worker_metrics: dict[str, float], agg_metrics: dict[str, float]) -> dict[str, int]:
    return {
        "frames_processed": _metric(worker_metrics, "emostream_frames_total"),
        "frames_dead_lettered": _metric(
            worker_metrics, "emostream_frames_total", outcome="dead_letter"
        ),
        "frames_stale_dropped": _metric(worker_metrics, "emostream_frames_total", outcome="stale"),
        "events_published": _metric(worker_metrics, "emostream_events_published_total"),
    }


def _processes(samples: dict, pids: dict, growth: dict) -> dict:
    processes = {}
    for name, s in samples.items():
        rss = [r for _, r in s]
        processes[name] = {
            "pid": pids[name],
            "samples": len(s),
            "rss_mb_start": round(rss[0] / MB, 1) if rss else None,
            "rss_mb_end": round(rss[-1] / MB, 1) if rss else None,
            "rss_mb_max": round(max(rss) / MB, 1) if rss else None,
            "growth_mb_per_min": None if growth[name] is None else round(growth[name], 3),
            "judged": name in JUDGED,
        }
    processes["broker"]["note"] = "memory-only storage keeps every message: grows by design"
    processes["redis"]["note"] = "deduplication keys live an hour: grows by design"
    return processes


def run_bench_soak(args) -> int:
    result = asyncio.run(
        soak(args.minutes, args.streams, args.fps, args.sample_s, args.max_growth_mb_per_min)
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if result["steady"] else 1
