"""An unreadable record stalls storage for well under a second, not for tens of seconds.

Issue 33, 2: a record on the events topic whose header key is not UTF-8 stopped all storage of a
real aggregator for about 50 s before it was dead-lettered, every time. Measured here, amid a
live flow of events on every partition: the time from producing the record right after the
poison one (on the same partition) until it is stored, against the same time without poison.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from emostream.aggregator.state.store import EventStore
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from tests.integration.aggregator_process import aggregator_process
from tests.integration.test_aggregator_faults import event
from tests.integration.test_poison_records import NotUtf8Key, raw_producer  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STALL_LIMIT_S = 3.0  # target < 1 s; slack for the loaded 2-core machine


def _at_least(store: EventStore, streams: list[str], count: int):
    async def check() -> bool:
        return sum([len(await store.recent_events(s, 1000)) for s in streams]) >= count

    return check


async def _live_flow(producer: AIOKafkaProducer, topic: str, stop: asyncio.Event) -> None:
    """10 events a second on each of the 6 partitions, until ``stop``."""
    seq = 0
    while not stop.is_set():
        for p in range(6):
            await producer.send(topic, event(f"live{p}", seq), partition=p)
        seq += 1
        await asyncio.sleep(0.1)


async def _until_stored(store: EventStore, stream: str, seq: int) -> float:
    """When (monotonic) ``stream``'s event ``seq`` was first seen stored."""
    while not any(e["frame_seq"] == seq for e in await store.recent_events(stream, 10)):
        await asyncio.sleep(0.02)
    return time.monotonic()


async def test_a_poison_record_stalls_storage_under_a_second(
    kafka_settings,
    redis_settings,
    raw_producer,  # noqa: F811
    tmp_path,
):
    kafka = kafka_settings.model_copy(update={"topic_partitions": 6})
    await ensure_topics(kafka)
    port = free_port()
    proc = aggregator_process(kafka, redis_settings, port, tmp_path).start(port)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    stop = asyncio.Event()
    flow = asyncio.create_task(_live_flow(producer, kafka.events_topic, stop))
    stalls, baseline = [], []
    try:
        async with EventStore(redis_settings) as store:
            await wait_until(_at_least(store, ["live0"], 20), 60.0, "the live flow stored")
            for seq in range(6):  # even: a marker alone (baseline); odd: poison, then the marker
                poison = [(event("mark", 1000 + seq), [(NotUtf8Key("k"), b"v")])] if seq % 2 else []
                await raw_producer(kafka.events_topic, poison)
                t0 = time.monotonic()
                await producer.send_and_wait(kafka.events_topic, event("mark", seq), partition=0)
                done = await asyncio.wait_for(_until_stored(store, "mark", seq), 120.0)
                (stalls if seq % 2 else baseline).append(done - t0)
                await asyncio.sleep(0.5)
            assert proc.running, (tmp_path / "aggregator.log").read_text()[-2000:]
    finally:
        stop.set()
        await flow
        await producer.stop()
        proc.stop()
    print(
        f"poison stalls {[round(s, 2) for s in stalls]} s, "
        f"baseline {[round(b, 2) for b in baseline]} s"
    )
    assert max(stalls) < STALL_LIMIT_S, stalls
