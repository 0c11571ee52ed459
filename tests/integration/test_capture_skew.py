"""Capture times ahead of the clock are clamped where events are accepted (issue 33, 11).

Six events captured 20 h ahead once left their session "active" for 72,000 s, absorbed the
events that followed, and pinned their stream first in ``/v1/streams``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from emostream.models import EMOTIONS
from emostream.schemas import EmotionEventV1
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def event(stream: str, seq: int, captured_at: datetime) -> bytes:
    probs = dict.fromkeys(EMOTIONS, 0.1)
    probs["happy"] = 0.4
    return (
        EmotionEventV1(
            event_id=EmotionEventV1.make_id(stream, seq, 0),
            stream_id=stream,
            frame_seq=seq,
            captured_at=captured_at,
            processed_at=datetime.now(UTC),
            face={"index": 0, "box": {"x": 1, "y": 1, "w": 40, "h": 40}, "detector_score": 0.9},
            emotion={"label": "happy", "confidence": 0.4, "probabilities": probs},
            model={"name": "test", "version": "1", "trained": True},
        )
        .model_dump_json()
        .encode()
    )


async def send(bootstrap: str, topic: str, stream: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=stream.encode())
    finally:
        await producer.stop()


async def test_future_capture_times_neither_extend_sessions_nor_pin_the_stream(
    kafka_settings, redis_settings, group_id
):
    await ensure_topics(kafka_settings)
    options = AggregatorOptions(
        group_id=group_id("agg"), session_gap_seconds=1.0, max_capture_ahead_s=1.0
    )
    bootstrap, topic = kafka_settings.bootstrap_servers, kafka_settings.events_topic
    async with (
        EventStore(redis_settings, options) as store,
        EventConsumer(kafka_settings, options, store) as consumer,
    ):
        task = asyncio.create_task(consumer.run())
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store)), base_url="http://127.0.0.1"
        )

        async def total(stream: str) -> int:
            state = await store.stream_state(stream)
            return state["events_total"] if state else 0

        ahead = datetime.now(UTC) + timedelta(hours=20)
        await send(bootstrap, topic, "ahead", [event("ahead", i, ahead) for i in range(6)])
        await wait_until(lambda: _ge(total("ahead"), 6), 40.0, "future events stored", 0.2)
        stored_at = datetime.now(UTC)
        [session] = (await client.get("/v1/streams/ahead/sessions")).json()["sessions"]
        last = datetime.fromisoformat(session["last_event_at"])
        assert last <= stored_at + timedelta(seconds=1.5), session

        await asyncio.sleep(2.5)  # past the clamp (1 s) and the session gap (1 s)
        [session] = (await client.get("/v1/streams/ahead/sessions")).json()["sessions"]
        assert not session["active"], session
        now = datetime.now(UTC)
        await send(bootstrap, topic, "later", [event("later", 0, now)])
        await send(bootstrap, topic, "ahead", [event("ahead", 6, now)])
        await wait_until(lambda: _ge(total("ahead"), 7), 40.0, "current event stored", 0.2)
        await wait_until(lambda: _ge(total("later"), 1), 40.0, "other stream stored", 0.2)
        sessions = (await client.get("/v1/streams/ahead/sessions")).json()["sessions"]
        assert [s["events"] for s in sessions] == [1, 6], sessions  # a new session, not absorbed
        streams = (await client.get("/v1/streams")).json()["streams"]
        assert {s["stream_id"] for s in streams} == {"ahead", "later"}
        latest = max(datetime.fromisoformat(s["last_event_at"]) for s in streams)
        assert latest <= datetime.now(UTC) + timedelta(seconds=1.5), streams
        consumer.request_stop()
        await asyncio.wait_for(task, timeout=20)
        await client.aclose()


async def _ge(value, n: int) -> bool:
    return await value >= n
