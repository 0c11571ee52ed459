"""Aggregator under faults: Redis down (503, retry, catch up), malformed events (dead letters)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import RedisServer, free_port
from emostream.models import EMOTIONS
from emostream.schemas import EmotionEventV1
from emostream.settings import RedisOptions
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def event(stream: str, seq: int) -> bytes:
    probs = dict.fromkeys(EMOTIONS, 0.1)
    probs["happy"] = 0.4
    now = datetime.now(UTC)
    return (
        EmotionEventV1(
            event_id=EmotionEventV1.make_id(stream, seq, 0),
            stream_id=stream,
            frame_seq=seq,
            captured_at=now,
            processed_at=now,
            face={"index": 0, "box": {"x": 1, "y": 1, "w": 40, "h": 40}, "detector_score": 0.9},
            emotion={"label": "happy", "confidence": 0.4, "probabilities": probs},
            model={"name": "test", "version": "1", "trained": True},
        )
        .model_dump_json()
        .encode()
    )


async def produce_events(kafka, streams: list[str], per_stream: int) -> None:
    """``per_stream`` events of each stream (round-robin by sequence) on the events topic."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all", linger_ms=20)
    await producer.start()
    try:
        for seq in range(per_stream):
            for sid in streams:
                await producer.send(kafka.events_topic, event(sid, seq), key=sid.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"s")
    finally:
        await producer.stop()


async def test_redis_outage_gives_503_then_catches_up(kafka_settings, group_id):
    await ensure_topics(kafka_settings)
    port = free_port()
    server = RedisServer().start(port)
    settings = RedisOptions(url=SecretStr(server.url), key_prefix="fault")
    try:
        async with (
            EventStore(settings) as store,
            EventConsumer(
                kafka_settings, AggregatorOptions(group_id=group_id("agg")), store
            ) as consumer,
        ):
            consumer.max_backoff_s = 1.0
            task = asyncio.create_task(consumer.run())
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(store, consumer=consumer)),
                base_url="http://api",
            )

            async def total() -> int:
                r = await client.get("/v1/streams")
                return (
                    r.json()["streams"][0]["events_total"]
                    if r.status_code == 200 and r.json()["count"]
                    else 0
                )

            await send(
                kafka_settings.bootstrap_servers,
                kafka_settings.events_topic,
                [event("s", i) for i in range(5)],
            )
            await wait_until(lambda: _ge(total, 5), 40.0, interval_s=0.3)

            server.stop()  # Redis goes away
            await send(
                kafka_settings.bootstrap_servers,
                kafka_settings.events_topic,
                [event("s", i) for i in range(5, 15)],
            )
            await asyncio.sleep(2)  # deliberately: the consumer must live through Redis being down
            down_streams = await client.get("/v1/streams")
            down_health = await client.get("/healthz")
            assert down_streams.status_code == 503
            assert down_health.status_code == 503
            assert not consumer.redis_ok and not task.done()

            server.start(port)  # back, empty (this test Redis keeps nothing on disk)
            await wait_until(lambda: _ge(total, 10), 40.0, interval_s=0.3)
            events = (await client.get("/v1/streams/s/events", params={"limit": 50})).json()[
                "events"
            ]
            assert sorted(e["frame_seq"] for e in events) == list(range(5, 15))
            assert consumer.redis_ok and not task.done()
            consumer.request_stop()
            await asyncio.wait_for(task, timeout=20)
            await client.aclose()
    finally:
        server.stop()


async def _ge(fn, n: int) -> bool:
    return await fn() >= n


async def test_malformed_and_unknown_version_events_dead_lettered(
    kafka_settings, redis_settings, group_id
):
    await ensure_topics(kafka_settings)
    good = event("m", 1)
    v2 = good.replace(b'"schema_version":1', b'"schema_version":2')
    await send(
        kafka_settings.bootstrap_servers, kafka_settings.events_topic, [b"{not json", v2, b"", good]
    )
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(
            kafka_settings, AggregatorOptions(group_id=group_id("agg")), store
        ) as consumer,
    ):
        task = asyncio.create_task(consumer.run())

        async def stored() -> bool:
            return bool(await store.recent_events("m", 10))

        await wait_until(stored, 40.0, interval_s=0.3)
        dlq = AIOKafkaConsumer(
            kafka_settings.dlq_topic,
            bootstrap_servers=kafka_settings.bootstrap_servers,
            auto_offset_reset="earliest",
        )
        await dlq.start()
        dead = []
        try:
            async with asyncio.timeout(30):
                while len(dead) < 3:
                    for recs in (await dlq.getmany(timeout_ms=500)).values():
                        dead.extend(recs)
        finally:
            await dlq.stop()
        assert not task.done()
        consumer.request_stop()
        await asyncio.wait_for(task, timeout=20)
    assert [dict(r.headers)["emostream-dlq-reason"] for r in dead] == [b"invalid_event"] * 3
    assert {r.value for r in dead} == {b"{not json", v2, b""}
    assert [e["frame_seq"] for e in await _events(redis_settings)] == [1]


async def _events(settings):
    async with EventStore(settings) as store:
        return await store.recent_events("m", 10)
