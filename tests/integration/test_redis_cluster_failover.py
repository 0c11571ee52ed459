"""A Redis Cluster master SIGKILLed while the aggregator drains a backlog into the cluster: its
replica takes over, the aggregator reconnects, every event is stored exactly once, and live push
goes on for the streams the promoted replica now holds.

Replication is asynchronous, so without the aggregator waiting for each master's replica
(``WAIT``) before it commits offsets, the writes the killed master had not yet passed on would
be lost with it, their offsets committed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from redis.cluster import RedisCluster

from emostream.aggregator.state.keys import stream_key
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.settings import RedisOptions
from tests.integration.aggregator_process import aggregator_process
from tests.integration.redis_cluster import RedisCluster6
from tests.integration.test_aggregator_faults import event, produce_events
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow
STREAMS = [f"fail-{i}" for i in range(12)]
PER_STREAM = 1500


def totals(cluster: RedisCluster6, prefix: str) -> dict[str, int]:
    with RedisCluster.from_url(cluster.url, decode_responses=True) as r:
        return {
            sid: int(r.hget(stream_key(prefix, sid, "state"), "events_total") or 0)
            for sid in STREAMS
        }


def busiest_master(cluster: RedisCluster6, prefix: str) -> tuple[int, list[str]]:
    """The master holding the most of the streams, and those streams."""
    with RedisCluster.from_url(cluster.url, decode_responses=True) as r:
        ports = [r.get_node_from_key(stream_key(prefix, sid, "state")).port for sid in STREAMS]
    port = max(set(ports), key=ports.count)
    return port, [sid for sid, p in zip(STREAMS, ports) if p == port]


async def send_more(kafka, sid: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for seq in range(PER_STREAM, PER_STREAM + n):
            await producer.send_and_wait(kafka.events_topic, event(sid, seq), key=sid.encode())
    finally:
        await producer.stop()


def live_after_failover(kafka, port: int, sid: str, n: int = 5) -> int:
    """Events of ``sid`` (on the promoted master) that reach an SSE client of the aggregator."""
    url = f"http://127.0.0.1:{port}/v1/live/sse"
    got, deadline = 0, time.monotonic() + 60
    with httpx.stream("GET", url, params={"stream_id": sid}, timeout=30) as resp:
        lines = resp.iter_lines()
        assert next(lines) == ": connected"
        asyncio.run(send_more(kafka, sid, n))
        for line in lines:
            got += line.startswith("data:")
            if got == n or time.monotonic() > deadline:
                break
    return got


@pytest.mark.timeout(300)
def test_a_killed_master_loses_no_event_and_counts_none_twice(
    redis_cluster: RedisCluster6, kafka_settings, tmp_path
):
    redis_opts = RedisOptions(
        url=SecretStr(redis_cluster.url), key_prefix=f"f{uuid.uuid4().hex[:6]}"
    )
    p = redis_opts.key_prefix
    asyncio.run(ensure_topics(kafka_settings))
    asyncio.run(produce_events(kafka_settings, STREAMS, PER_STREAM))
    total = PER_STREAM * len(STREAMS)
    victim, on_victim = busiest_master(redis_cluster, p)
    port = free_port()
    proc = aggregator_process(
        kafka_settings,
        redis_opts,
        port,
        tmp_path,
        EMOSTREAM_AGGREGATOR__MAX_BATCH_EVENTS="100",
        EMOSTREAM_AGGREGATOR__MAX_EVENTS_PER_STREAM=str(PER_STREAM * 2),
    ).start(port)
    try:
        wait_until_sync(lambda: sum(totals(redis_cluster, p).values()) > total // 5, 120, "a fifth")
        redis_cluster.kill(victim)
        promoted = redis_cluster.wait_failover(victim)
        assert promoted != victim
        wait_until_sync(
            lambda: sum(totals(redis_cluster, p).values()) >= total, 180, "every event stored"
        )
        time.sleep(2)  # a replayed batch counted twice would show up now
        assert proc._proc.poll() is None  # the aggregator reconnected instead of dying
        assert totals(redis_cluster, p) == dict.fromkeys(STREAMS, PER_STREAM)
        assert live_after_failover(kafka_settings, port, on_victim[0]) == 5  # live push goes on
    finally:
        proc.stop()
    expected = {sid: PER_STREAM + 5 * (sid == on_victim[0]) for sid in STREAMS}
    assert totals(redis_cluster, p) == expected
    with RedisCluster.from_url(redis_cluster.url, decode_responses=True) as r:
        for sid in STREAMS:
            docs = [json.loads(d) for d in r.lrange(stream_key(p, sid, "events"), 0, -1)]
            assert sorted(d["frame_seq"] for d in docs) == list(range(expected[sid])), sid
            buckets = [r.hgetall(k) for k in r.scan_iter(stream_key(p, sid, "min:*"))]
            counted = sum(int(v) for b in buckets for f, v in b.items() if f.endswith(":n"))
            assert counted == expected[sid], sid  # windows count each once
