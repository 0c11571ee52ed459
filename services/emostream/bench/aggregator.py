"""`emostream bench aggregator`: how fast the aggregator stores a backlog, and what it costs Redis.

A backlog of schema-valid events (``aggregator_backlog``) is produced to a fresh events topic of
an embedded Tansu broker, then drained by ``--replicas`` `emostream aggregator` processes (one
consumer group) into a redis-server of the benchmark's own (or ``--redis-url``). Reported: events
stored per second from the first stored to the last (the aggregators' ``events_stored`` counters,
polled; polling issues no Redis command), Redis commands per event (``INFO commandstats`` before
and after), p50/p99 of one batch's Redis write (the aggregators' store-time histogram), Redis
memory per stored event, the machine and the commit of the code that ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import SecretStr

from emostream.bench import add_bench
from emostream.bench.aggregator_backlog import BacklogShape, produce
from emostream.bench.aggregator_measure import (
    DUPLICATE,
    code_commit,
    process_cpu_s,
    read_all,
    store_ms,
    stored_total,
)
from emostream.bench.aggregator_redis import RedisNodes, delta_all
from emostream.bench.pipeline_ingest import cpu_model
from emostream.bench.soak_measure import _metric
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import RedisServer, ServiceProcess, TansuBroker, free_port
from emostream.local.stack import log_tails, services_env
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions, RedisOptions


def register(subparsers) -> None:
    """Add `bench aggregator`."""
    b = add_bench(subparsers, "aggregator", run_bench_aggregator, help=__doc__.splitlines()[0])
    b.add_argument("--events", type=int, default=20_000, help="backlog size")
    b.add_argument("--streams", type=int, default=50)
    b.add_argument("--replicas", type=int, default=1, help="aggregator processes in one group")
    b.add_argument("--partitions", type=int, default=6, help="of the events topic")
    b.add_argument("--max-batch-events", type=int, default=500, help="per Redis write")
    b.add_argument("--redis-url", default=None, help="an existing Redis (default: start one)")
    b.add_argument("--timeout", type=float, default=600.0, help="give up draining after (s)")


def _aggregators(
    kafka: KafkaOptions, redis_opts: RedisOptions, args, log_dir: Path
) -> list[tuple[ServiceProcess, int]]:
    env = services_env(kafka, redis_opts, groups=f"bench-{uuid.uuid4().hex[:8]}") | {
        "EMOSTREAM_API__HOST": "127.0.0.1",
        "EMOSTREAM_AGGREGATOR__MAX_BATCH_EVENTS": str(args.max_batch_events),
    }
    procs = []
    for i in range(args.replicas):
        port = free_port()
        proc_env = env | {"EMOSTREAM_API__PORT": str(port)}
        procs.append((ServiceProcess("aggregator", proc_env, log_dir / f"agg-{i}.log"), port))
    return procs


def _drain(ports: list[int], total: int, timeout_s: float) -> tuple[list, float | None, float]:
    """Poll the replicas' counters until ``total`` events are stored: the readings, the time
    the first stored event was seen and the time the last one was."""
    readings: list[dict[str, float]] = []
    first = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        readings = read_all(ports, readings)
        now = time.monotonic()
        stored = stored_total(readings)
        if stored and first is None:
            first = now
        if stored >= total:
            return readings, first, now
        time.sleep(0.2)  # a scrape costs the aggregator some CPU: not too often
    raise TimeoutError(f"{stored_total(readings)} of {total} events stored in {timeout_s:.0f} s")


def _settle(r: RedisNodes, quiet_s: float = 1.0, limit_s: float = 10.0) -> list[dict[str, int]]:
    """Commandstats once no command has arrived for ``quiet_s`` (the last batch's feeds)."""
    last = r.commandstats_each()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = r.commandstats_each()
        if delta_all(last, now) == {}:
            return now
        last = now
    return last


def _measure(r: RedisNodes, kafka, redis_opts, args, shape, log_dir: Path) -> dict:
    before, memory_before, cpu_before = r.commandstats_each(), r.used_memory(), r.cpu_seconds()
    procs = _aggregators(kafka, redis_opts, args, log_dir)
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(procs)) as pool:  # all join the group at about once
            list(pool.map(lambda pp: pp[0].start(pp[1]), procs))
        ports = [port for _, port in procs]
        agg_cpu_before = sum(process_cpu_s(p.pid) for p, _ in procs)  # start-up left out
        readings, first, last = _drain(ports, shape.events, args.timeout)
        agg_cpu_s = sum(process_cpu_s(p.pid) for p, _ in procs) - agg_cpu_before
        after = _settle(r)
        redis_cpu_s = r.cpu_seconds() - cpu_before
        readings = read_all(ports, readings)
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{log_tails([p for p, _ in procs])}") from exc
    finally:
        for proc, _ in procs:
            proc.stop()
    commands = delta_all(before, after)
    per_event = sum(commands.values()) / shape.events
    seconds = last - (first or last)
    return {
        "events_stored": stored_total(readings),
        "duplicates_dropped": sum(_metric(m, DUPLICATE) for m in readings),
        "seconds_first_to_last": round(seconds, 2),
        "events_per_s": round(shape.events / seconds, 1) if seconds > 0 else None,
        "start_to_last_s": round(last - started, 2),
        "redis_commands_per_event": round(per_event, 2),
        "redis_commands_by_name_per_event": {
            k: round(v / shape.events, 3) for k, v in list(commands.items())[:12]
        },
        "aggregator_cpu_us_per_event": round(agg_cpu_s * 1e6 / shape.events, 1),
        "redis_cpu_us_per_event": round(redis_cpu_s * 1e6 / shape.events, 2),
        "batch_store_ms": store_ms(readings),
        "redis_commands_per_master": [
            sum(delta_all([b], [a]).values()) for b, a in zip(before, after)
        ],
        "redis_bytes_per_event": round((r.used_memory() - memory_before) / shape.events, 1),
        "redis_memory_by_key": r.memory_by_kind(redis_opts.key_prefix, shape.stream_ids()),
    }


async def _produce(kafka: KafkaOptions, shape: BacklogShape) -> dict:
    await ensure_topics(kafka)
    t0 = time.monotonic()
    produced = await produce(kafka, shape)
    return produced | {"seconds": round(time.monotonic() - t0, 2)}


def bench_aggregator(args) -> dict:
    load_before = os.getloadavg()[0]
    shape = BacklogShape(events=args.events, streams=args.streams, seed=getattr(args, "seed", 0))
    own_redis = None if args.redis_url else RedisServer().start()
    url = args.redis_url or own_redis.url
    try:
        with TansuBroker() as broker, tempfile.TemporaryDirectory() as tmp:
            kafka = KafkaOptions(
                bootstrap_servers=broker.bootstrap,
                topic_partitions=args.partitions,
                **run_topics(prefix="bench-"),
            )
            produced = asyncio.run(_produce(kafka, shape))
            redis_opts = RedisOptions(url=SecretStr(url), key_prefix=f"b{uuid.uuid4().hex[:8]}")
            r = RedisNodes(url)
            try:
                result = _measure(r, kafka, redis_opts, args, shape, Path(tmp))
            finally:
                r.close()
    finally:
        if own_redis is not None:
            own_redis.stop()
    return {
        "bench": "aggregator",
        "code": code_commit(),
        "machine": {
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
        },
        "config": {
            "events": shape.events,
            "streams": shape.streams,
            "fps": shape.fps,
            "faces_per_frame": shape.faces_per_frame,
            "replicas": args.replicas,
            "partitions": args.partitions,
            "max_batch_events": args.max_batch_events,
            "redis": "own redis-server" if own_redis is not None else "--redis-url",
            "redis_cluster_masters": len(r.nodes) if r.cluster else None,
        },
        "produced": produced,
        **result,
    }


def run_bench_aggregator(args) -> int:
    result = bench_aggregator(args)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
