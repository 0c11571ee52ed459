"""Three workers share a 6-partition frames topic; one is SIGKILLed mid-run; nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from emostream.aggregator import EventConsumer
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.kafka.clients import ensure_topics
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STREAMS = [f"cam-{i}" for i in range(6)]
FRAMES_PER_STREAM = 16


def start_worker(kafka, group: str, n: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "EMOSTREAM_KAFKA__FRAMES_TOPIC": kafka.frames_topic,
            "EMOSTREAM_KAFKA__EVENTS_TOPIC": kafka.events_topic,
            "EMOSTREAM_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
            "EMOSTREAM_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "EMOSTREAM_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
            "EMOSTREAM_KAFKA__CLIENT_ID": f"chaos-{n}",
            "EMOSTREAM_WORKER__GROUP_ID": group,
            "EMOSTREAM_WORKER__METRICS_PORT": "0",
            "EMOSTREAM_WORKER__MAX_BATCH_FRAMES": "4",
            "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",  # every frame's face is an event, from seq 0
            "EMOSTREAM_MODEL__THREADS": "1",
            "EMOSTREAM_LOG__LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "emostream.cli.main", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def produce(kafka, payload: bytes, seqs: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for seq in seqs:
            for sid in STREAMS:
                await producer.send(
                    kafka.frames_topic,
                    payload,
                    key=sid.encode(),
                    headers=frame_headers(FrameMeta(sid, seq, int(time.time() * 1000))),
                )
        await producer.flush()
    finally:
        await producer.stop()


async def committed_and_highwater(kafka, group: str) -> tuple[dict, dict]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(kafka.frames_topic, p) for p in range(kafka.topic_partitions)]
        consumer.assign(tps)
        committed = {tp.partition: (await consumer.committed(tp)) or 0 for tp in tps}
        for tp in tps:
            await consumer.seek_to_end(tp)
            await consumer.position(tp)
        await consumer.getmany(timeout_ms=500)
        high = {tp.partition: consumer.highwater(tp) for tp in tps}
    finally:
        await consumer.stop()
    return committed, high


async def test_sigkilled_worker_loses_nothing(
    broker, kafka_settings, redis_settings, astronaut_bgr, group_id
):
    kafka = kafka_settings.model_copy(update={"topic_partitions": 6})
    await ensure_topics(kafka)
    payload = encode_frame(astronaut_bgr)
    workers = [start_worker(kafka, group_id("worker"), n) for n in range(3)]
    try:
        async with (
            EventStore(redis_settings) as store,
            EventConsumer(kafka, AggregatorOptions(group_id=group_id("agg")), store) as consumer,
        ):
            agg = asyncio.create_task(consumer.run())

            async def stored_total() -> int:
                streams = await store.list_streams()
                return sum(s["events_total"] for s in streams)

            half = FRAMES_PER_STREAM // 2
            await produce(kafka, payload, range(half))

            async def stored_at_least(n: int) -> bool:
                return await stored_total() >= n

            await wait_until(lambda: stored_at_least(12), 90, "workers start processing")
            workers[0].send_signal(signal.SIGKILL)  # mid-run, possibly mid-batch
            workers[0].wait()
            await produce(kafka, payload, range(half, FRAMES_PER_STREAM))

            expected = len(STREAMS) * FRAMES_PER_STREAM
            await wait_until(lambda: stored_at_least(expected), 120, "every frame's event stored")

            per_stream = {}
            for sid in STREAMS:
                events = await store.recent_events(sid, 1000)
                per_stream[sid] = sorted(e["frame_seq"] for e in events)
            total = await stored_total()
            consumer.request_stop()
            await asyncio.wait_for(agg, timeout=20)

        # Every frame processed, each event held exactly once (duplicates were deduplicated).
        for sid, seqs in per_stream.items():
            assert seqs == list(range(FRAMES_PER_STREAM)), f"{sid}: {seqs}"
        assert total == expected
        assert all(w.poll() is None for w in workers[1:]), "surviving workers must keep running"

        # Every partition consumed to its end by the surviving workers.
        async def consumed_to_end() -> bool:
            committed, high = await committed_and_highwater(kafka, group_id("worker"))
            return committed == high

        await wait_until(consumed_to_end, 30, "committed offsets reach the highwater", 1.0)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
