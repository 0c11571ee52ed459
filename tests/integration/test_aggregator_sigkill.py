"""The aggregator SIGKILLed again and again while a backlog drains: every event stored once.

Before dedup markers and data were written in one transaction, a kill between the two steps
left markers without data, and the replay of that batch was dropped as duplicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time

import pytest
import redis

from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from tests.integration.aggregator_process import aggregator_process
from tests.integration.test_aggregator_faults import produce_events
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow
STREAMS = [f"kill-{i}" for i in range(4)]
# 32,000 events in all: enough to outlast 12 short lives (a loaded CI machine stored ~1,450 a
# life with the one-script store; 16,000 drained before the twelfth kill)
PER_STREAM = 8000
KILLS = 12


def aggregator(kafka, redis_settings, port: int, tmp_path):
    return aggregator_process(
        kafka,
        redis_settings,
        port,
        tmp_path,
        EMOSTREAM_KAFKA__SESSION_TIMEOUT_MS="3000",
        EMOSTREAM_KAFKA__HEARTBEAT_INTERVAL_MS="500",
        EMOSTREAM_AGGREGATOR__MAX_EVENTS_PER_STREAM=str(PER_STREAM * 2),
        EMOSTREAM_AGGREGATOR__MAX_BATCH_EVENTS="40",
    )


def stored(r: redis.Redis, prefix: str) -> int:
    return sum(int(r.hget(key(prefix, sid, "state"), "events_total") or 0) for sid in STREAMS)


def key(prefix: str, sid: str, part: str) -> str:
    return f"{prefix}:stream:{{{sid}}}:{part}"  # the stream id is the hash tag


@pytest.mark.timeout(420)
def test_sigkilled_aggregator_stores_every_event_exactly_once(
    kafka_settings, redis_settings, tmp_path
):
    asyncio.run(ensure_topics(kafka_settings))
    asyncio.run(produce_events(kafka_settings, STREAMS, PER_STREAM))
    total = PER_STREAM * len(STREAMS)
    prefix = redis_settings.key_prefix
    r = redis.Redis.from_url(redis_settings.url.get_secret_value(), decode_responses=True)
    rng = random.Random(18)
    kills, before_kill = 0, []
    port = free_port()
    while kills < KILLS:
        proc = aggregator(kafka_settings, redis_settings, port, tmp_path).start(port)
        try:
            start = stored(r, prefix)
            assert start < total, f"the backlog drained before kill {kills + 1}: {before_kill}"
            deadline = time.monotonic() + 60
            while stored(r, prefix) == start and time.monotonic() < deadline:
                time.sleep(0.01)  # killed only while it is storing: mid-batch, mid-commit, anywhere
            assert stored(r, prefix) > start, (
                f"no progress within 60 s after kills at {before_kill}"
            )
            time.sleep(rng.uniform(0.0, 0.08))  # short lives: a loaded CPU must not drain it early
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.stop()  # reaps it, or stops it when the test failed: never left running
        kills += 1
        before_kill.append(stored(r, prefix))
    assert before_kill[-1] < total, f"the backlog drained before kill {KILLS}: {before_kill}"

    proc = aggregator(kafka_settings, redis_settings, port, tmp_path).start(port)
    try:
        wait_until_sync(lambda: stored(r, prefix) >= total, 120, "every event stored", 0.2)
        time.sleep(2)  # anything replayed late would show up as an extra event
    finally:
        proc.stop()

    for sid in STREAMS:
        docs = [json.loads(d) for d in r.lrange(key(prefix, sid, "events"), 0, -1)]
        seqs = sorted(d["frame_seq"] for d in docs)
        assert seqs == list(range(PER_STREAM)), (
            f"{sid}: {len(seqs)} stored, {len(set(seqs))} distinct"
        )
        assert int(r.hget(key(prefix, sid, "state"), "events_total")) == PER_STREAM
        buckets = [r.hgetall(b) for b in r.keys(key(prefix, sid, "min:*"))]
        counted = sum(int(v) for b in buckets for f, v in b.items() if f.endswith(":n"))
        assert counted == PER_STREAM  # windows count each once
    assert stored(r, prefix) == total
    r.close()
