"""`emostream bench soak`: the stack at moderate load for minutes, each service in its own process,
to show memory stays flat. Not for CI: a meaningful run takes ten minutes on a quiet machine.

The broker and Redis are the embedded ones (``emostream.local.servers``); the worker and
the aggregator run as ``emostream worker`` / ``emostream aggregator`` child processes; ingest runs
in this process (it is the load generator). Every ``sample_s`` the resident set size of each
process is read from ``/proc/<pid>/status``. The verdict covers the services: the embedded broker
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
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr

from emostream.aggregator.state.store import EventStore
from emostream.config import IngestOptions
from emostream.ingest.runner import Ingest
from emostream.kafka.clients import client_kwargs, ensure_topics
from emostream.local.servers import (
    RedisServer,
    ServiceProcess,
    TansuBroker,
    free_port,
    settings_env,
)
from emostream.settings import KafkaSettings, RedisSettings

MB = 1_000_000
JUDGED = ("worker", "aggregator")


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of a live process (``VmRSS``), None if it is gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def growth_mb_per_min(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over the second half of the run (by time), in MB per minute.

    The first half is warm-up (model load, caches, allocator arenas). None with fewer than two
    samples in the second half.
    """
    if len(samples) < 2:
        return None
    mid = (samples[0][0] + samples[-1][0]) / 2
    half = [(t, r) for t, r in samples if t >= mid]
    if len(half) < 2:
        return None
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_r = sum(r for _, r in half) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in half)
    if var_t == 0:
        return None
    slope_b_per_s = sum((t - mean_t) * (r - mean_r) for t, r in half) / var_t
    return slope_b_per_s * 60 / MB


def steady(growth: dict[str, float | None], max_growth_mb_per_min: float, exits: list) -> bool:
    """Steady: no process exited and every judged service grew less than the limit."""
    return not exits and all(
        growth.get(name) is not None and growth[name] < max_growth_mb_per_min for name in JUDGED
    )


def scrape(url: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value}; {} if the endpoint does not answer."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def _metric(metrics: dict[str, float], name: str, **labels: str) -> int:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return int(
        sum(
            v
            for k, v in metrics.items()
            if (k == name or k.startswith(name + "{")) and all(w in k for w in want)
        )
    )


async def _count_topic(kafka: KafkaSettings, topic: str) -> int:
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


async def soak(
    minutes: float,
    streams: int,
    fps: float,
    sample_s: float = 10.0,
    max_growth_mb_per_min: float = 1.0,
) -> dict:
    tag = uuid.uuid4().hex[:6]
    log_dir = Path(tempfile.mkdtemp(prefix="emostream-soak-"))
    with ExitStack() as procs:
        broker = procs.enter_context(TansuBroker())
        redis = procs.enter_context(RedisServer())
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap,
            frames_topic=f"soak-frames-{tag}",
            events_topic=f"soak-events-{tag}",
            dlq_topic=f"soak-dlq-{tag}",
            changes_topic=f"soak-changes-{tag}",
            alerts_topic=f"soak-alerts-{tag}",
            topic_partitions=max(streams, 2),
        )
        redis_settings = RedisSettings(url=SecretStr(redis.url), key_prefix=f"soak{tag}")
        await ensure_topics(kafka)
        env = (
            settings_env("kafka", kafka)
            | settings_env("redis", redis_settings)
            | {"EMOSTREAM_LOG__LEVEL": "WARNING", "EMOSTREAM_LOG__JSON_OUTPUT": "true"}
        )
        metrics_port, api_port = free_port(), free_port()
        services = {
            "worker": ServiceProcess(
                "worker",
                env | {"EMOSTREAM_WORKER__METRICS_PORT": str(metrics_port)},
                log_dir / "worker.log",
            ),
            "aggregator": ServiceProcess(
                "aggregator",
                env | {"EMOSTREAM_API__PORT": str(api_port)},
                log_dir / "aggregator.log",
            ),
        }
        for proc in services.values():
            procs.callback(proc.stop)
        services["worker"].start(metrics_port)
        services["aggregator"].start(api_port)
        watched = {**services, "broker": broker, "redis": redis}
        pids = {name: p.pid for name, p in watched.items()}

        ingests = [
            Ingest(kafka, IngestOptions(source="sample", stream_id=f"soak-{i}", fps=fps, loop=True))
            for i in range(streams)
        ]
        for ing in ingests:
            await ing.start()
        tasks = [asyncio.create_task(ing.run()) for ing in ingests]
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in watched}
        exits: list[dict] = []
        t0 = time.monotonic()
        try:
            while True:
                elapsed = time.monotonic() - t0
                for name, pid in pids.items():
                    rss = rss_bytes(pid)
                    if rss is not None:
                        samples[name].append((elapsed, rss))
                for name, proc in watched.items():
                    code = proc.returncode
                    if code is not None and not any(e["process"] == name for e in exits):
                        exits.append(
                            {"process": name, "exit_code": code, "at_s": round(elapsed, 1)}
                        )
                if elapsed >= minutes * 60 or exits:
                    break
                await asyncio.sleep(min(sample_s, max(minutes * 60 - elapsed, 0.0)))
        finally:
            for ing in ingests:
                ing.request_stop()
            await asyncio.wait(tasks, timeout=30)
            for ing in ingests:
                await ing.stop()
        run_s = time.monotonic() - t0
        frames_in = sum(i.sent for i in ingests)
        # Let the backlog drain (bounded) so stored events describe the whole run.
        drain_deadline = time.monotonic() + 30
        worker_metrics: dict[str, float] = {}
        while time.monotonic() < drain_deadline and not exits:
            worker_metrics = await asyncio.to_thread(
                scrape, f"http://127.0.0.1:{metrics_port}/metrics"
            )
            if _metric(worker_metrics, "emostream_frames_total") >= frames_in:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(2)  # the aggregator's last batch
        agg_metrics = await asyncio.to_thread(scrape, f"http://127.0.0.1:{api_port}/metrics")
        async with EventStore(redis_settings) as store:
            events_stored = sum(s["events_total"] for s in await store.list_streams())
        dead_letters = await _count_topic(kafka, kafka.dlq_topic)

    growth = {name: growth_mb_per_min(s) for name, s in samples.items()}
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
    return {
        "benchmark": "soak",
        "minutes": round(run_s / 60, 2),
        "streams": streams,
        "fps_per_stream": fps,
        "sample_s": sample_s,
        "machine": platform.machine(),
        "processes": processes,
        "frames_in": frames_in,
        "frames_failed": sum(i.failed for i in ingests),
        "frames_processed": _metric(worker_metrics, "emostream_frames_total"),
        "frames_dead_lettered": _metric(
            worker_metrics, "emostream_frames_total", outcome="dead_letter"
        ),
        "frames_stale_dropped": _metric(worker_metrics, "emostream_frames_total", outcome="stale"),
        "events_published": _metric(worker_metrics, "emostream_events_published_total"),
        "events_stored": events_stored,
        "dead_letters": dead_letters,
        "broker_data_loss": _metric(agg_metrics, "emostream_broker_data_loss_total"),
        "process_exits": exits,
        "max_growth_mb_per_min": max_growth_mb_per_min,
        "steady": steady(growth, max_growth_mb_per_min, exits),
        "logs": str(log_dir),
    }


def run_bench_soak(args) -> int:
    result = asyncio.run(
        soak(args.minutes, args.streams, args.fps, args.sample_s, args.max_growth_mb_per_min)
    )
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if result["steady"] else 1
