"""A slow aggregator holds a bounded number of records while a backlog builds, then stores all.

Redis writes are slowed by a store wrapper (the writes still go to a real Redis). The producer
outruns the consumer by far; what the aggregator holds stays within its configured bounds: one
``getmany(max_records=...)`` batch in flight, and aiokafka's prefetch buffer within
``fetch_max_bytes`` per partition.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from emostream.aggregator import EventConsumer
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from tests.synthetic import make_event
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STREAMS = [f"bp-{i}" for i in range(8)]
PER_STREAM = 500
MAX_BATCH_EVENTS = 200
FETCH_MAX_BYTES = 128 * 1024
PRODUCER_BATCH_BYTES = 16 * 1024  # a record batch is returned whole: a fetch may exceed by one


class SlowStore(EventStore):
    """The real store, each write delayed: a Redis that keeps up worse than the producers."""

    delay_s = 0.25

    async def add_new_events(self, events):
        await asyncio.sleep(self.delay_s)
        return await super().add_new_events(events)


def event_json(stream: str, seq: int) -> bytes:
    return (
        make_event(
            0.0, stream=stream, seq=seq, track=None, label="happy", p=0.4, base=datetime.now(UTC)
        )
        .model_dump_json()
        .encode()
    )


def fetch_buffer_bytes(consumer: EventConsumer) -> int:
    """Bytes aiokafka holds fetched but not yet handed to the loop.

    Private aiokafka state (one fetched response per partition): this test pins the library's
    buffering, so it should fail loudly if that changes.
    """
    total = 0
    for result in consumer._consumer._fetcher._records.values():
        records = getattr(result, "_partition_records", None)
        if records is not None:
            total += records._records.size_in_bytes()
    return total


async def test_slow_aggregator_holds_a_bounded_batch_and_stores_everything_once(
    kafka_settings, redis_settings, group_id
):
    # fetch_max_bytes is never below max_message_bytes (one message must fit), so lower both.
    kafka = kafka_settings.model_copy(
        update={"fetch_max_bytes": FETCH_MAX_BYTES, "max_message_bytes": 64 * 1024}
    )
    await ensure_topics(kafka)
    expected = len(STREAMS) * PER_STREAM
    async with (
        SlowStore(redis_settings) as store,
        EventConsumer(
            kafka,
            AggregatorOptions(group_id=group_id("agg"), max_batch_events=MAX_BATCH_EVENTS),
            store,
        ) as consumer,
    ):
        held = {"now": 0, "max": 0, "max_batch": 0, "concurrent": 0, "max_concurrent": 0}
        handle = consumer.handle

        async def counting_handle(records):
            held["now"] += len(records)
            held["concurrent"] += 1
            held["max"] = max(held["max"], held["now"])
            held["max_batch"] = max(held["max_batch"], len(records))
            held["max_concurrent"] = max(held["max_concurrent"], held["concurrent"])
            try:
                await handle(records)
            finally:
                held["now"] -= len(records)
                held["concurrent"] -= 1

        consumer.handle = counting_handle
        task = asyncio.create_task(consumer.run())
        buffered = []

        async def sample() -> None:
            while True:
                buffered.append(fetch_buffer_bytes(consumer))
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers,
            max_batch_size=PRODUCER_BATCH_BYTES,
            linger_ms=5,
        )
        await producer.start()
        published_bytes = 0
        try:
            futures = []
            for seq in range(PER_STREAM):
                for sid in STREAMS:
                    value = event_json(sid, seq)
                    published_bytes += len(value)
                    futures.append(await producer.send(kafka.events_topic, value, key=sid.encode()))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        published_at = time.monotonic()

        # Stops early if the consumer's task ended (crashed): the asserts below say how.
        await wait_until(
            lambda: consumer.stored >= expected or task.done(), 90, "every event stored", 0.2
        )
        drained_s = time.monotonic() - published_at
        sampler.cancel()
        consumer.request_stop()
        await asyncio.wait_for(task, timeout=20)
        totals = {
            s["stream_id"]: s["events_total"]
            for s in await store.list_streams()
            if s["stream_id"] in STREAMS
        }

    bound = kafka.topic_partitions * (FETCH_MAX_BYTES + PRODUCER_BATCH_BYTES)
    print(
        f"published {published_bytes} B; max buffered {max(buffered)} B (bound {bound}); "
        f"max held {held['max']} records; drained {drained_s:.1f} s after publishing"
    )
    # The backlog was far larger than what the aggregator may hold, so the bound is not trivial.
    assert published_bytes > 4 * bound
    assert drained_s > 1.0, "the store was not slow enough to build a backlog"
    # One batch at a time, never more than max_records, however large the backlog.
    assert held["max_concurrent"] == 1
    assert held["max_batch"] <= MAX_BATCH_EVENTS and held["max"] <= MAX_BATCH_EVENTS
    assert max(buffered) <= bound, f"prefetch buffer {max(buffered)} B over {bound} B"
    assert max(buffered) > 0, "the sampler never saw the prefetch buffer"
    # Eventually everything is stored, each event once.
    assert consumer.stored == expected and consumer.consumed == expected
    assert totals == dict.fromkeys(STREAMS, PER_STREAM)
